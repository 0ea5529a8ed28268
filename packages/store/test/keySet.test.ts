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
