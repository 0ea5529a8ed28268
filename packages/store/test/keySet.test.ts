import test from 'ava';
import {type Digest, hashBytes} from '../src/index.js';
import {DigestSet, KeySet} from '../src/maintenance/keySet.js';

const digests = (n: number, salt: string): Digest[] => Array.from({length: n}, (_, i) => hashBytes(Buffer.from(`${salt}${i}`)));

test('a digest set holds what was added, through its growth, and nothing else', t => {
  const set = new DigestSet();
  const ins = digests(20_000, 'in');
  t.true(ins.every(d => set.add(d) === true));
  t.true(ins.slice(0, 100).every(d => set.add(d) === false));
  t.is(set.size, ins.length);
  t.true(ins.every(d => set.has(d)));
  t.false(digests(2_000, 'out').some(d => set.has(d)));
  t.deepEqual([...set], ins);
  t.is(set.add('b3:not hex'), undefined);
  t.false(set.has('b3:'));
});

test('a key set keeps blob keys as digests and every other key, malformed blob keys too, as it is', t => {
  const set = new KeySet();
  const [a, b] = digests(2, 'k') as [Digest, Digest];
  const keys = [`b:${a}`, `t:${a}`, 'tag:x:1', 'b:b3:torn', `b:${b}`];
  for (const k of keys) t.true(set.add(k));
  for (const k of keys) t.false(set.add(k));
  t.is(set.size, keys.length);
  for (const k of keys) t.true(set.has(k));
  t.false(set.has(`t:${b}`));
  t.false(set.has(`b:${hashBytes(Buffer.from('other'))}`));
  t.deepEqual([...set].sort(), [...keys].sort());
});

test('without lists, in order, the digests another set lacks; blobsMissing does so against a key set\'s blob keys', t => {
  const all = digests(5_000, 'x');
  const set = new DigestSet();
  for (const d of all) set.add(d);
  const other = new DigestSet();
  const keys = new KeySet();
  all.forEach((d, i) => { if (i % 3 !== 0) { other.add(d); keys.add(`b:${d}`); } });
  keys.add('t:' + all[0]); // a tree key of the same digest is no blob key
  const missing = all.filter((_, i) => i % 3 === 0);
  t.deepEqual([...set.without(other)], missing);
  t.deepEqual([...keys.blobsMissing(set)], missing);
  t.deepEqual([...set.without(set)], []);
  t.deepEqual([...set.without(new DigestSet())], all);
});

test('digests go in from tree bytes at an offset and are looked up by their hex at an offset', t => {
  const [a, b] = digests(2, 'at') as [Digest, Digest];
  const buf = Buffer.concat([Buffer.from('xyz'), Buffer.from(a.slice(3), 'hex'), Buffer.from(b.slice(3), 'hex')]);
  const set = new DigestSet();
  t.true(set.addAt(buf, 3));
  t.false(set.addAt(buf, 3));
  t.true(set.has(a));
  t.false(set.has(b));
  t.true(set.hasHex(`b:b3:${a.slice(3)}`, 5));
  t.false(set.hasHex(`b:b3:${b.slice(3)}`, 5));
  t.false(set.hasHex(`b:b3:${a.slice(3)}0`, 5), 'one digit too many');
  t.true(set.addHex(`b:b3:${b.slice(3)}`, 5));
  t.is(set.addHex('b:b3:zz', 5), undefined);
  const keys = new KeySet();
  t.true(keys.addBlobAt(buf, 3 + 32));
  t.true(keys.has(`b:${b}`));
  t.true(keys.hasBlobHex(b.slice(3)));
  t.false(keys.hasBlobHex(a.slice(3)));
});

test('eachMissingHex and eachBlobKeyMissing find in one conversion the digests a set lacks, and fall back for what is not hex', t => {
  const all = digests(3_000, 'scan');
  const keys = new KeySet();
  all.forEach((d, i) => { if (i % 4 !== 0) keys.add(`b:${d}`); });
  const lacking = all.filter((_, i) => i % 4 === 0).map(d => `b:${d}`);
  const seen: string[] = [];
  keys.eachBlobKeyMissing(all.map(d => `b:${d}`), k => { seen.push(k); });
  t.deepEqual(seen, lacking);
  // A malformed key (a torn write, another digest scheme) is reported as lacking unless it was added as it is.
  keys.add('b:b3:torn');
  const mixed = [`b:${all[1]}`, 'b:b3:torn', 'b:sha256:00', `b:${all[0]}`];
  const seen2: string[] = [];
  keys.eachBlobKeyMissing(mixed, k => { seen2.push(k); });
  t.deepEqual(seen2, ['b:sha256:00', `b:${all[0]}`]);
  const set = new DigestSet();
  set.add(all[0]!);
  const hex = all.slice(0, 3).map(d => d.slice(3)).join('');
  const missing: number[] = [];
  t.true(set.eachMissingHex(hex, 3, i => { missing.push(i); }));
  t.deepEqual(missing, [1, 2]);
  t.false(set.eachMissingHex(hex, 2, () => t.fail()), 'wrong length');
  t.false(set.eachMissingHex(`${hex.slice(0, -1)}g`, 3, () => t.fail()), 'not hex');
});

test('randomHex gives the asked number of hex digits, and differs between calls', async t => {
  const {randomHex} = await import('../src/host/randomHex.js');
  const names = Array.from({length: 1000}, () => randomHex(6));
  t.true(names.every(n => /^[0-9a-f]{12}$/.test(n)));
  t.is(new Set(names).size, names.length);
  t.regex(randomHex(1), /^[0-9a-f]{2}$/);
  t.regex(randomHex(16), /^[0-9a-f]{32}$/);
});
