import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import {type Digest, LayerBuilder, META_INLINE_MAX, type Store, StoreError, buildMetaImage, metaImagePath} from '../src/index.js';
import {blobKey} from '../src/index/keys.js';
import {inlineBlobValue} from '../src/index/values.js';
import {openTempStore} from './_helpers.js';

const m = {mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000};
const bytes = (n: number, seed: number) => Buffer.from(Array.from({length: n}, (_, i) => (i * 131 + seed * 7) & 0xff));

/** A layer of small files (up to 16 KiB), one empty: all but the empty one for a pack (META_INLINE_MAX). */
async function smallFiles(store: Store): Promise<{tree: Digest; packed: Digest[]}> {
  const b = new LayerBuilder();
  b.dir([], {mode: 0o755, uid: 0, gid: 0, mtime: 0});
  const packed: Digest[] = [];
  for (let i = 0; i < 60; i++) {
    const data = bytes(i < 10 ? 100 * i : 2049 + 230 * i, i);
    const blob = await store.putBlob(data);
    if (data.length > META_INLINE_MAX) packed.push(blob);
    b.leaf([`d${i % 4}`, `f${i}`], {kind: 'file', ...m, size: data.length, blob});
  }
  const {root} = await b.write(store);
  return {tree: root, packed};
}

/** The built files by name (image and pack), for comparing two builds. */
function builtFiles(store: Store): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const dir of ['meta', 'packs']) for (const n of fs.readdirSync(path.join(store.dir, dir))) out.set(`${dir}/${n}`, fs.readFileSync(path.join(store.dir, dir, n)));
  return out;
}

function removeBuilt(store: Store): void {
  for (const dir of ['meta', 'packs']) fs.rmSync(path.join(store.dir, dir), {recursive: true, force: true});
}

test('a pack written on a thread of its own is the same file as one written in the build, and so is the image', async t => {
  const store = await openTempStore(t);
  const {tree, packed} = await smallFiles(store);
  const here = await buildMetaImage(store, tree);
  t.is(here.packedNew, packed.length);
  const want = builtFiles(store);
  t.is(want.size, 3, 'the image, the pack and its list');
  removeBuilt(store);
  const threaded = await buildMetaImage(store, tree, {packThreadBytes: 0});
  t.deepEqual(threaded.packs, here.packs);
  t.deepEqual(builtFiles(store), want);
  t.deepEqual(fs.readdirSync(path.join(store.dir, 'tmp')), [], 'nothing left in tmp/');
});

test('a small blob whose bytes do not hash to its name fails the build, on the pack thread or not, and leaves no file', async t => {
  const store = await openTempStore(t);
  const {tree, packed} = await smallFiles(store);
  const victim = packed[17]!;
  await store.index.commit([{type: 'put', key: blobKey(victim), value: inlineBlobValue(bytes(4000, 999))}]);
  for (const packThreadBytes of [undefined, 0]) {
    const err = await t.throwsAsync(buildMetaImage(store, tree, {packThreadBytes}), {instanceOf: StoreError});
    t.is((err as StoreError).code, 'OBJECT_CORRUPT');
    t.regex(err!.message, new RegExp(victim.slice(3)));
    t.false(fs.existsSync(metaImagePath(store, tree)));
    t.deepEqual(fs.readdirSync(path.join(store.dir, 'packs')).filter(n => !n.startsWith('.')), [], `no pack (thread from ${packThreadBytes ?? 'the default'})`);
    t.deepEqual(fs.readdirSync(path.join(store.dir, 'tmp')), [], 'nothing left in tmp/');
  }
});
