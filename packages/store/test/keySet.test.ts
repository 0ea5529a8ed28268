import test from 'ava';
import {type Digest, hashBytes} from '../src/index.js';
import {DigestSet, KeySet, STRING_DIGESTS_MAX} from '../src/maintenance/keySet.js';

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

/** A set as it is while small (strings), or moved to bytes by STRING_DIGESTS_MAX digests more than the test's. */
const filled = (big: boolean): DigestSet => {
  const set = new DigestSet();
  if (big) for (const d of digests(STRING_DIGESTS_MAX + 1, 'filler')) set.add(d);
  return set;
};
const modes = test.macro<[(t: import('ava').ExecutionContext, big: boolean) => void]>({
  exec: (t, body) => { body(t, false); body(t, true); },
  title: title => `${title ?? ''} (as strings and as bytes)`,
});

test('digests go in from tree bytes at an offset and are looked up by their hex after a prefix', modes, (t, big) => {
  const [a, b] = digests(2, 'at') as [Digest, Digest];
  const buf = Buffer.concat([Buffer.from('xyz'), Buffer.from(a.slice(3), 'hex'), Buffer.from(b.slice(3), 'hex')]);
  const set = filled(big);
  const n = set.size;
  t.true(set.addAt(buf, 3));
  t.false(set.addAt(buf, 3));
  t.true(set.has(a));
  t.false(set.has(b));
  t.is(set.indexOfAt(buf, 3), n);
  t.is(set.indexOfAt(buf, 35), -1);
  t.is(set.digestAt(n), a);
  t.true(set.hasHex(`b:b3:${a.slice(3)}`, 'b:b3:'));
  t.false(set.hasHex(`b:b3:${b.slice(3)}`, 'b:b3:'));
  t.false(set.hasHex(`b:b3:${a.slice(3)}0`, 'b:b3:'), 'one digit too many');
  t.false(set.hasHex(`b:b3:${a.slice(3).toUpperCase()}`, 'b:b3:'), 'upper case is no digest');
  t.true(set.addHex(`b:b3:${b.slice(3)}`, 'b:b3:'));
  t.is(set.addHex('b:b3:zz', 'b:b3:'), undefined);
  t.is(set.addHex(`b:xx:${a.slice(3)}`, 'b:b3:'), undefined);
  t.is(set.addHex(a.slice(3).toUpperCase(), ''), undefined);
  t.true(set.hasHex(b.slice(3), ''));
  const keys = new KeySet();
  t.true(keys.addBlobAt(buf, 3 + 32));
  t.true(keys.has(`b:${b}`));
  t.true(keys.hasBlobHex(b.slice(3)));
  t.false(keys.hasBlobHex(a.slice(3)));
});

test('a set keeps each digest\'s index when it moves from strings to bytes', t => {
  const all = digests(STRING_DIGESTS_MAX + 100, 'move');
  const set = new DigestSet();
  for (const d of all) set.add(d);
  t.is(set.size, all.length);
  t.true([0, 1, STRING_DIGESTS_MAX - 1, STRING_DIGESTS_MAX, all.length - 1].every(i => set.digestAt(i) === all[i]));
  const buf = Buffer.from(all[7]!.slice(3), 'hex');
  t.is(set.indexOfAt(buf, 0), 7);
  t.false(set.add(all[3]!));
  t.throws(() => set.digestAt(all.length), {instanceOf: RangeError});
});

test('eachMissingKey and eachBlobKeyMissing find the keys whose digests a set lacks, malformed ones too', modes, (t, big) => {
  const all = digests(3_000, 'scan');
  const set = filled(big);
  all.forEach((d, i) => { if (i % 4 !== 0) set.add(d); });
  const lacking = all.filter((_, i) => i % 4 === 0).map(d => `b:${d}`);
  const seen: string[] = [];
  set.eachMissingKey(all.map(d => `b:${d}`), 'b:b3:', k => { seen.push(k); });
  t.deepEqual(seen, lacking);
  const mixed = [`b:${all[1]}`, 'b:b3:torn', 'b:sha256:00', `b:${all[0]}`, `b:${all[2]!.toUpperCase()}`];
  const seen2: string[] = [];
  set.eachMissingKey(mixed, 'b:b3:', k => { seen2.push(k); });
  t.deepEqual(seen2, mixed.slice(1));
  // A key set reports a malformed blob key (a torn write) as lacking unless it was added as it is.
  const keys = new KeySet();
  if (big) for (const d of digests(STRING_DIGESTS_MAX + 1, 'filler')) keys.add(`b:${d}`);
  for (const d of all.slice(1)) keys.add(`b:${d}`);
  keys.add('b:b3:torn');
  const seen3: string[] = [];
  keys.eachBlobKeyMissing(mixed, k => { seen3.push(k); });
  t.deepEqual(seen3, ['b:sha256:00', `b:${all[0]}`, `b:${all[2]!.toUpperCase()}`]);
});

test('addEachHex adds a step of keys at once, and one by one around a malformed one', modes, (t, big) => {
  const all = digests(2_500, 'each');
  const set = filled(big);
  const n = set.size;
  set.addEachHex(all.map(d => `b:${d}`), 'b:b3:');
  t.is(set.size, n + all.length);
  t.deepEqual([...set].slice(n), all);
  const more = digests(3, 'more');
  const other = filled(big);
  other.addEachHex([`b:${more[0]}`, 'b:xx:' + more[1]!.slice(3), `b:${more[2]}`, `b:${more[0]}`], 'b:b3:');
  t.deepEqual([...other].slice(n), [more[0], more[2]]);
});

test('indexesWithout compares sets in either form', t => {
  const all = digests(4_000, 'w');
  for (const [bigA, bigB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
    const a = filled(bigA), b = filled(bigB);
    const base = a.size;
    all.forEach((d, i) => { a.add(d); if (i % 5 !== 0) b.add(d); });
    const missing = [...a.indexesWithout(b)].map(i => a.digestAt(i));
    t.deepEqual(missing.filter(d => all.includes(d)), all.filter((_, i) => i % 5 === 0), `${bigA} ${bigB}`);
    if (bigA && !bigB) t.is(missing.length, all.length / 5 + base);
  }
});

test('randomHex gives the asked number of hex digits, and differs between calls', async t => {
  const {randomHex} = await import('../src/host/randomHex.js');
  const names = Array.from({length: 1000}, () => randomHex(6));
  t.true(names.every(n => /^[0-9a-f]{12}$/.test(n)));
  t.is(new Set(names).size, names.length);
  t.regex(randomHex(1), /^[0-9a-f]{2}$/);
  t.regex(randomHex(16), /^[0-9a-f]{32}$/);
});
