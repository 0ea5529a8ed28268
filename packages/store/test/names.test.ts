import test from 'ava';
import {compareNames, decodeTree, encodeTree, isValidName} from '../src/objects/tree.js';
import {nameFromBytes, nameToBytes} from '../src/objects/names.js';

// Names are bytes: one lossless mapping (surrogateescape) between any byte string and a
// JavaScript string, under which valid UTF-8 is plain text and byte order is name order.

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s + 0x6d2b79f5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32; };
}
const randomBytes = (rand: () => number) => Buffer.from(Array.from({length: 1 + Math.floor(rand() * 10)}, () => {
  const r = rand();
  // Mostly bytes that make and break UTF-8 sequences.
  return r < 0.3 ? 0x61 + Math.floor(rand() * 3) : r < 0.6 ? 0x80 + Math.floor(rand() * 64) : 0xc0 + Math.floor(rand() * 64);
}));

test('every byte string maps to a name and back unchanged', t => {
  const rand = prng(0xb17e5);
  for (let i = 0; i < 5000; i++) {
    const b = randomBytes(rand);
    const name = nameFromBytes(b);
    t.true(nameToBytes(name).equals(b), b.toString('hex'));
  }
});

test('valid UTF-8 is the plain string; f\\xff and f\\xfe are two names', t => {
  t.is(nameFromBytes(Buffer.from('é ü 日本 😀', 'utf8')), 'é ü 日本 😀');
  t.is(nameFromBytes(Buffer.from([0x66, 0xff])), 'f\udcff');
  t.not(nameFromBytes(Buffer.from([0x66, 0xff])), nameFromBytes(Buffer.from([0x66, 0xfe])));
  // Overlong forms and encoded surrogates are not UTF-8: each byte is escaped.
  t.is(nameFromBytes(Buffer.from([0xc0, 0xaf])), '\udcc0\udcaf');
  t.is(nameFromBytes(Buffer.from([0xed, 0xa0, 0x80])), '\udced\udca0\udc80');
});

test('names sort by their bytes', t => {
  const rand = prng(0x5047);
  for (let i = 0; i < 3000; i++) {
    const a = randomBytes(rand), b = randomBytes(rand);
    t.is(Math.sign(compareNames(nameFromBytes(a), nameFromBytes(b))), Math.sign(Buffer.compare(a, b)), `${a.toString('hex')} ${b.toString('hex')}`);
  }
});

test('a string that no bytes give is not a valid name', t => {
  t.true(isValidName('f\udcff'));
  t.false(isValidName('f\ud800'), 'a lone surrogate that stands for no byte');
  t.false(isValidName('\udcc3\udca9'), 'escaped bytes that spell UTF-8 (é)');
});

test('a tree with names and a link target that are not UTF-8 encodes their bytes and decodes to the same tree', t => {
  const meta = {mode: 0o644, uid: 0, gid: 0, mtime: 1};
  const tree = {mode: 0o755, uid: 0, gid: 0, mtime: 1, opaque: false, entries: [
    {name: 'f\udcfe', kind: 'fifo' as const, ...meta},
    {name: 'f\udcff', kind: 'symlink' as const, ...meta, target: 't\udc80'},
  ]};
  const bytes = encodeTree(tree);
  t.true(bytes.includes(Buffer.from([0x66, 0xff])));
  t.true(bytes.includes(Buffer.from([0x74, 0x80])));
  t.false(bytes.includes(Buffer.from([0xef, 0xbf, 0xbd])), 'no U+FFFD');
  t.deepEqual(decodeTree(bytes), tree);
});
