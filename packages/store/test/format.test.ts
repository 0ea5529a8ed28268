import {spawnSync} from 'node:child_process';
import {readFileSync} from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'ava';
import {type Digest, type Image, type Tree, StoreError, hashBytes} from '../src/index.js';
import {chainId, decodeImage, encodeImage, hashImage} from '../src/objects/image.js';
import {decodeTree, encodeTree} from '../src/objects/tree.js';
import {wasmHasherFactory} from '../src/objects/digest.js';
import {openTempStore} from './_helpers.js';

// The vectors live in docs/format.md (compiled tests run from packages/store/dist/test).
const FORMAT_MD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'docs', 'format.md');
const doc = readFileSync(FORMAT_MD, 'utf8');

function block(lang: string, name: string): string {
  const m = new RegExp('```' + lang + ' vector=' + name + '\\n([\\s\\S]*?)\\n```').exec(doc);
  if (!m) throw new Error(`docs/format.md has no \`\`\`${lang} block for vector ${name}`);
  return m[1]!;
}
function hexBlock(name: string): Buffer {
  const hex = block('hex', name).split('\n').map(l => l.split('#')[0]!.replace(/\s/g, '')).join('');
  if (!/^([0-9a-f]{2})*$/.test(hex)) throw new Error(`vector ${name}: the hex block is not hex`);
  return Buffer.from(hex, 'hex');
}
function docDigest(label: string): Digest {
  const m = new RegExp(label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + ': `(b3:[0-9a-f]{64})`').exec(doc);
  if (!m) throw new Error(`docs/format.md has no "${label}: \`b3:…\`" line`);
  return m[1] as Digest;
}
/** A tree from the doc's JSON: xattr values are UTF-8 strings there (or `{"hex": …}` bytes), Buffers in code. */
function treeFromJson(text: string): Tree {
  const value = (v: string | {hex: string}) => (typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v.hex, 'hex'));
  const xattrs = (o: {xattrs?: Record<string, string | {hex: string}>}) =>
    o.xattrs ? {...o, xattrs: Object.fromEntries(Object.entries(o.xattrs).map(([k, v]) => [k, value(v)]))} : o;
  const t = JSON.parse(text) as Tree & {xattrs?: Record<string, string>; entries: {xattrs?: Record<string, string | {hex: string}>}[]};
  return {...xattrs(t), entries: t.entries.map(xattrs)} as unknown as Tree;
}
function b3sum(bytes: Buffer): Digest {
  const r = spawnSync('b3sum', ['--no-names'], {input: bytes});
  if (r.error || r.status !== 0) throw new Error('b3sum is missing or failed: install it (npm run setup, as root)');
  return `b3:${r.stdout.toString().trim()}` as Digest;
}

const TREES = ['tree-empty-dir', 'tree-small', 'tree-every-kind', 'tree-implicit-bytes'];

for (const name of TREES) {
  test(`vector ${name}: the encoder writes the documented bytes and digest`, t => {
    const tree = treeFromJson(block('json', name));
    const bytes = hexBlock(name);
    t.is(encodeTree(tree).toString('hex'), bytes.toString('hex'));
    t.is(hashBytes(bytes), docDigest(`Digest of \`${name}\``));
  });

  test(`vector ${name}: the decoder reads the documented bytes back`, t => {
    t.deepEqual(decodeTree(hexBlock(name)), treeFromJson(block('json', name)));
  });

  test(`vector ${name}: b3sum and the wasm BLAKE3 agree on the digest`, async t => {
    const bytes = hexBlock(name);
    const want = docDigest(`Digest of \`${name}\``);
    t.is(b3sum(bytes), want);
    t.is((await wasmHasherFactory())().update(bytes).digest(), want);
  });
}

test('vector tree-every-kind names tree-empty-dir and the documented blob', t => {
  const every = treeFromJson(block('json', 'tree-every-kind'));
  const dir = every.entries.find(e => e.name === 'a-dir');
  t.is(dir?.kind === 'dir' ? dir.tree : undefined, docDigest('Digest of `tree-empty-dir`'));
  t.deepEqual(new Set(every.entries.map(e => e.kind)), new Set(['dir', 'block', 'char', 'file', 'fifo', 'hardlink', 'symlink', 'whiteout']));
  t.is<string | undefined, string | undefined>(hashBytes(Buffer.from('hello\n')), /whose\s+blob digest is `(b3:[0-9a-f]{64})`/.exec(doc)?.[1]);
  t.is<string | undefined, string | undefined>(hashBytes(Buffer.alloc(0)), /digest of the empty string is\s+(b3:[0-9a-f]{64})/.exec(doc)?.[1]);
});

test('vector image-platform: a platform is part of the encoding and the digest', t => {
  const image = JSON.parse(block('json', 'image-platform')) as Image;
  const text = block('text', 'image-platform');
  t.is(encodeImage(image).toString('utf8'), text);
  t.is(hashBytes(Buffer.from(text, 'utf8')), docDigest('Digest of `image-platform`'));
  t.is(b3sum(Buffer.from(text, 'utf8')), docDigest('Digest of `image-platform`'));
  t.deepEqual(decodeImage(Buffer.from(text, 'utf8')).platform, {architecture: 'arm64', os: 'linux', variant: 'v8'});
  t.not(hashImage({...image, platform: undefined}).digest, docDigest('Digest of `image-platform`'));
});

test('vector image: the canonical JSON, its digest and the chain id are as documented', t => {
  const image = JSON.parse(block('json', 'image')) as Image;
  const text = block('text', 'image');
  t.is(encodeImage(image).toString('utf8'), text);
  t.is(hashBytes(Buffer.from(text, 'utf8')), docDigest('Digest of `image`'));
  t.is(b3sum(Buffer.from(text, 'utf8')), docDigest('Digest of `image`'));
  t.deepEqual(decodeImage(Buffer.from(text, 'utf8')), {layers: image.layers, config: JSON.parse(text).config});
  t.is(chainId(image.layers), docDigest("Chain id of `image`'s layers"));
  t.deepEqual(image.layers, [docDigest('Digest of `tree-small`'), docDigest('Digest of `tree-every-kind`')]);
});

test('the chain id of one layer is the layer and of three is hashed twice', t => {
  const [a, b] = [docDigest('Digest of `tree-small`'), docDigest('Digest of `tree-every-kind`')];
  const c = docDigest('Digest of `tree-empty-dir`');
  t.is(chainId([a]), a);
  t.is(chainId([a, b, c]), hashBytes(Buffer.from(`${hashBytes(Buffer.from(`${a} ${b}`))} ${c}`)));
  t.is(chainId([]), undefined);
});

const refuses = test.macro((t, name: string, mutate: (b: Buffer) => Buffer) => {
  const err = t.throws(() => decodeTree(mutate(Buffer.from(hexBlock(name)))), {instanceOf: StoreError});
  t.is(err?.code, 'OBJECT_CORRUPT');
});
test('a tree with a stray flag bit is refused', refuses, 'tree-small', b => { b[5] = 2; return b; });
test('a tree with a trailing byte is refused', refuses, 'tree-small', b => Buffer.concat([b, Buffer.of(0)]));
test('a truncated tree is refused', refuses, 'tree-small', b => b.subarray(0, b.length - 1));
test('a tree with an unknown kind is refused', refuses, 'tree-small', b => { b[43] = 9; return b; }); // magic..entry count: 32 bytes, name: 2 + 9
test('a tree whose whiteout has a mode is refused', refuses, 'tree-every-kind', b => {
  const at = b.indexOf(Buffer.from('0002776805', 'hex')); // "wh", kind 5
  b.writeUInt32BE(0o644, at + 5);
  return b;
});
test('a tree with names out of order is refused', refuses, 'tree-every-kind', b => {
  const at = b.indexOf(Buffer.from('0003626c6b', 'hex')); // "blk" -> "clk" sorts after "chr"
  b[at + 2] = 0x63;
  return b;
});

test('the index holds trees and blobs as documented', async t => {
  const store = await openTempStore(t);
  const tree = treeFromJson(block('json', 'tree-small'));
  const d = await store.putTree(tree);
  t.is(d, docDigest('Digest of `tree-small`'));
  t.deepEqual(await store.index.get(`t:${d}`), hexBlock('tree-small'));

  const small = await store.putBlob(Buffer.from('hello\n'));
  t.deepEqual(await store.index.get(`b:${small}`), Buffer.from('0068656c6c6f0a', 'hex'));

  const bigBytes = Buffer.alloc(100_000, 7);
  const big = await store.putBlob(bigBytes);
  await store.flush();
  t.deepEqual(await store.index.get(`b:${big}`), Buffer.from('0100000000000186a0', 'hex'));
  const hex = big.slice(3);
  t.deepEqual(await fs.readFile(path.join(store.dir, 'objects', 'b3', hex.slice(0, 2), hex.slice(2))), bigBytes);
  t.deepEqual(JSON.parse(await fs.readFile(path.join(store.dir, 'strata.json'), 'utf8')), {format: 3});
});

test('tags and layer records use the documented keys', async t => {
  const store = await openTempStore(t);
  const root = await store.putTree(treeFromJson(block('json', 'tree-empty-dir')));
  await store.putLayer({id: root, entries: 0, bytes: 0, created: '2026-01-01T00:00:00.000Z'});
  t.deepEqual(JSON.parse((await store.index.get(`l:${root}`))!.toString()), {id: root, entries: 0, bytes: 0, created: '2026-01-01T00:00:00.000Z'});
  const image = await store.putImage({layers: [root], config: {}}, 'app:1' as never);
  t.is((await store.index.get('tag:app:1'))?.toString(), image);
  t.is((await store.index.get(`i:${image}`))?.toString(), `{"config":{},"layers":["${root}"],"strata":1}`);
});
