import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {type Digest, INLINE_MAX, LAYER_PACK_MIN_BLOBS, type Store, StoreError, buildMetaImage, collectGarbage, ensureMetaImage, importDirectory, layerPackOf, metaImagePath, readPackList, verifyStore} from '../src/index.js';
import {blobKey} from '../src/index/keys.js';
import {inlineBlobValue} from '../src/index/values.js';
import {needRoot, openTempStore, run, tempDir} from './_helpers.js';
import {InlineSpool} from '../src/meta/inlineSpool.js';
import {hashBytes} from '../src/objects/digest.js';

// A layer's small blobs are packed when the layer is stored, so that the first mount of an
// image of it reads none of them from the index (meta/layerPacks.ts).

const bytes = (n: number, seed: number) => Buffer.from(Array.from({length: n}, (_, i) => (i * 131 + seed * 7) & 0xff));

/** A directory of `small` inline-sized files of 1 B to 16 KiB, two object-file ones, an empty file and a hardlink. */
async function smallTree(t: Parameters<typeof tempDir>[0], small: number, seed = 0): Promise<string> {
  const dir = await tempDir(t);
  for (let i = 0; i < small; i++) {
    fs.mkdirSync(path.join(dir, `d${i % 7}`), {recursive: true});
    fs.writeFileSync(path.join(dir, `d${i % 7}`, `f${i}`), bytes(1 + ((i * 977) % INLINE_MAX), i + seed));
  }
  fs.writeFileSync(path.join(dir, 'large1'), bytes(INLINE_MAX + 1, 1));
  fs.writeFileSync(path.join(dir, 'large2'), bytes(100_000, 2));
  fs.writeFileSync(path.join(dir, 'empty'), '');
  fs.linkSync(path.join(dir, 'd0', 'f0'), path.join(dir, 'hardlink'));
  return dir;
}

/** The blobs a pack's list names. */
function listed(pack: string): Digest[] {
  const list = fs.readFileSync(pack.replace(/\.(erofs|unchecked)$/, '.blobs'));
  return Array.from({length: list.length / 32}, (_, i) => `b3:${list.toString('hex', 32 * i, 32 * i + 32)}` as Digest);
}

function packsDir(store: Store): string[] {
  return fs.readdirSync(path.join(store.dir, 'packs')).sort();
}

test('an import packs the layer\'s inline blobs unchecked, and the first mount\'s build checks it, reads none of them and packs nothing', async t => {
  const store = await openTempStore(t);
  const {layer} = await importDirectory(store, await smallTree(t, 100));
  const unchecked = layerPackOf(store, layer.id);
  t.regex(unchecked ?? '', /\.unchecked$/, 'the layer has a pack, not yet checked nor synced');
  t.is(listed(unchecked!).length, 100, 'every inline blob once (the hardlink shares one), no empty or object-file blob');
  t.deepEqual(listed(unchecked!), [...listed(unchecked!)].sort(), 'in digest order');
  run('fsck.erofs', [unchecked!]);
  t.deepEqual(fs.readdirSync(path.join(store.dir, 'tmp')), [], 'nothing left in tmp/');
  const built = await buildMetaImage(store, layer.id);
  t.is(built.packedNew, 0, 'no fresh pack');
  t.is(built.packedRefs, 100, 'every small file (the hardlink is the same inode)');
  const pack = layerPackOf(store, layer.id);
  t.deepEqual(built.packs, [pack]);
  t.regex(pack!, /\.erofs$/, 'checked and in place');
  t.false(fs.existsSync(unchecked!));
  // The same bytes as the pack and image a build writes when the layer has no pack.
  const withLayerPack = [fs.readFileSync(pack!), fs.readFileSync(built.path)];
  fs.rmSync(path.join(store.dir, 'packs'), {recursive: true});
  fs.rmSync(path.join(store.dir, 'meta'), {recursive: true});
  const again = await buildMetaImage(store, layer.id);
  t.is(again.packedNew, 100);
  t.deepEqual(again.packs, [pack], 'the same pack, by its digest');
  t.true(fs.readFileSync(pack!).equals(withLayerPack[0]!));
  t.true(fs.readFileSync(again.path).equals(withLayerPack[1]!), 'and the same image');
});

test('a layer with few inline blobs gets no pack; importing a layer again writes its missing pack and keeps one in place', async t => {
  const store = await openTempStore(t);
  const {layer: small} = await importDirectory(store, await smallTree(t, LAYER_PACK_MIN_BLOBS - 2));
  t.is(layerPackOf(store, small.id), undefined);
  const dir = await smallTree(t, LAYER_PACK_MIN_BLOBS, 1);
  const {layer} = await importDirectory(store, dir);
  const pack = layerPackOf(store, layer.id)!;
  const files = packsDir(store);
  t.is(files.length, 3, 'the pack, its list, the layer\'s marker');
  t.regex(pack, /\.unchecked$/);
  fs.utimesSync(pack, new Date(0), new Date(0));
  await importDirectory(store, dir);
  t.deepEqual(packsDir(store), files);
  t.true(fs.statSync(pack).mtimeMs > 0, 'touched: a gc running meanwhile keeps it');
  fs.rmSync(pack);
  await importDirectory(store, dir);
  t.true(fs.existsSync(pack), 'written again');
});

test('gc keeps a layer\'s pack while the layer is live and removes it, marker and list too, with the layer', async t => {
  const store = await openTempStore(t);
  const {layer} = await importDirectory(store, await smallTree(t, 80));
  const image = await store.putImage({layers: [layer.id], config: {}});
  await store.setTag('small:1' as never, image);
  const pack = layerPackOf(store, layer.id)!;
  t.is((await collectGarbage(store)).byKind.pack.count, 0);
  t.true(fs.existsSync(pack));
  // A build checks it and names it; the image goes with gc, the pack only with its layer.
  await buildMetaImage(store, layer.id);
  t.deepEqual(readPackList(metaImagePath(store, layer.id))?.map(p => path.join(store.dir, 'packs', `${p.slice(3)}.unchecked`)), [pack]);
  await store.deleteTag('small:1' as never);
  await store.deleteImage(image);
  const report = await collectGarbage(store);
  t.is(report.byKind.pack.count, 1);
  t.is(report.byKind.metaImage.count, 1);
  t.deepEqual(packsDir(store), [], 'pack, list and marker gone');
  t.is((await collectGarbage(store)).objects, 0, 'a second gc finds nothing');
});

test('a damaged small blob fails the import that would pack it (OBJECT_CORRUPT) and leaves no pack, no marker, nothing in tmp/', async t => {
  const store = await openTempStore(t);
  const first = await smallTree(t, 70);
  await importDirectory(store, first);
  fs.rmSync(path.join(store.dir, 'packs'), {recursive: true});
  // Damage one inline blob the next import reuses.
  const data = fs.readFileSync(path.join(first, 'd3', 'f3'));
  const blob = await store.putBlob(data);
  await store.index.commit([{type: 'put', key: blobKey(blob), value: inlineBlobValue(bytes(data.length, 999))}]);
  fs.writeFileSync(path.join(first, 'one-more'), 'x');
  const err = await t.throwsAsync(importDirectory(store, first), {instanceOf: StoreError});
  t.is((err as StoreError).code, 'OBJECT_CORRUPT');
  t.regex(err!.message, new RegExp(blob.slice(3)));
  t.deepEqual(fs.existsSync(path.join(store.dir, 'packs')) ? packsDir(store) : [], []);
  t.deepEqual(fs.readdirSync(path.join(store.dir, 'tmp')), []);
});

test('the spool keeps 32 MiB in memory and the rest in a tmp/ file, reads every blob back as stored, and discard removes the file', async t => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'spool');
  const spool = new InlineSpool(() => file);
  const blobs: [Digest, Buffer][] = [];
  for (let i = 0; i < 2600; i++) {
    const data = bytes(i % 10 === 0 ? 1 + i : INLINE_MAX - (i % 100), i);
    blobs.push([hashBytes(data), data]);
    spool.add(hashBytes(data), data);
  }
  spool.add(blobs[0]![0], Buffer.from('a second add of a digest is ignored'));
  t.true(fs.existsSync(file), 'past 32 MiB the bytes go to a file');
  for (const [d, data] of blobs) t.true(spool.read(d.slice(3))?.equals(data), d);
  t.is(spool.read('00'.repeat(32)), undefined);
  // readAt, as a pack reads: every digest from one buffer, in another order, one not kept among them.
  const order = [...blobs.keys()].reverse();
  const all = Buffer.concat([...order.map(i => Buffer.from(blobs[i]![0].slice(3), 'hex')), Buffer.alloc(32)]);
  order.forEach((b, k) => t.true(spool.readAt(all, 32 * k)?.equals(blobs[b]![1]), `readAt ${k}`));
  t.is(spool.readAt(all, 32 * order.length), undefined);
  spool.discard();
  t.false(fs.existsSync(file));
  t.is(spool.read(blobs[5]![0].slice(3)), undefined, 'a discarded spool answers nothing');
});

/** Mounts a built image with its packs over objects/ as strata does (read-only); unmounted when the test ends. */
async function mountBuilt(t: ExecutionContext, built: {path: string; objects: string; packs: readonly string[]}): Promise<string> {
  needRoot();
  const dir = await tempDir(t, 'strata-mount-');
  const lowers = [built.path, ...built.packs].map((image, i) => {
    const at = path.join(dir, `lower${i}`);
    fs.mkdirSync(at);
    run('mount', ['-t', 'erofs', '-o', 'ro,loop', image, at]);
    t.teardown(() => { spawnSync('umount', ['-l', at]); });
    return at;
  });
  lowers.splice(1, 0, built.objects);
  const merged = path.join(dir, 'merged');
  fs.mkdirSync(merged);
  run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,redirect_dir=nofollow,index=off,metacopy=off,lowerdir=${lowers.join('::')}`, merged]);
  t.teardown(() => { spawnSync('umount', ['-l', merged]); });
  return merged;
}

/** Every regular file under `dir`, as relative paths. */
function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, {recursive: true, encoding: 'utf8'}).filter(f => fs.lstatSync(path.join(dir, f)).isFile()).sort();
}

// What a crash can leave of a pack written without an fsync: damaged bytes, a short file, an
// empty one, a stale list, or nothing under its name.
const damages: Record<string, (pack: string) => void> = {
  'a byte changed': pack => {
    const b = fs.readFileSync(pack);
    b[b.length >> 1] = b[b.length >> 1]! ^ 0xff;
    fs.writeFileSync(pack, b);
  },
  truncated: pack => fs.truncateSync(pack, fs.statSync(pack).size >> 1),
  empty: pack => fs.truncateSync(pack, 0),
  'its list damaged': pack => {
    const list = pack.replace(/\.unchecked$/, '.blobs');
    const b = fs.readFileSync(list);
    b[40] = b[40]! ^ 0x01;
    fs.writeFileSync(list, b);
  },
  missing: pack => fs.rmSync(pack),
};

for (const [damage, harm] of Object.entries(damages)) {
  test(`a layer pack with ${damage} before its first mount is not used: the mount packs the blobs again from the index, serves the right bytes, and verify passes`, async t => {
    const store = await openTempStore(t);
    const dir = await smallTree(t, 90);
    const {layer} = await importDirectory(store, dir);
    const unchecked = layerPackOf(store, layer.id)!;
    const good = fs.readFileSync(unchecked);
    harm(unchecked);
    t.is((await verifyStore(store)).problems.length, 0, 'an unchecked pack is no damage a mount serves');
    const built = await ensureMetaImage(store, layer.id);
    t.true(built.built);
    t.is('packedNew' in built ? built.packedNew : -1, 90, 'every small blob packed afresh, from the index');
    const pack = layerPackOf(store, layer.id)!;
    t.deepEqual(built.packs, [pack], 'the same blobs make the same pack, which the marker names again');
    t.true(fs.readFileSync(pack).equals(good));
    t.false(fs.existsSync(unchecked), 'the damaged file is gone');
    t.is((await verifyStore(store)).problems.length, 0);
    const merged = await mountBuilt(t, built);
    const files = filesUnder(dir);
    t.deepEqual(filesUnder(merged), files);
    for (const f of files) t.true(fs.readFileSync(path.join(merged, f)).equals(fs.readFileSync(path.join(dir, f))), f);
  });
}

test('verify finds a checked pack whose blob list does not hash to the digest in its head', async t => {
  const store = await openTempStore(t);
  const {layer} = await importDirectory(store, await smallTree(t, 70));
  await ensureMetaImage(store, layer.id);
  const list = layerPackOf(store, layer.id)!.replace(/\.erofs$/, '.blobs');
  const b = fs.readFileSync(list);
  b[0] = b[0]! ^ 0x80;
  fs.writeFileSync(list, b);
  const {problems} = await verifyStore(store);
  t.is(problems.length, 1);
  t.regex(problems[0]!.message, /blob list/);
});

test('a layer pack written before pack heads (zeros in its first 1 KiB, synced as .erofs: the previous version) is used as it is, and verify passes', async t => {
  const store = await openTempStore(t);
  const dir = await smallTree(t, 80);
  const {layer} = await importDirectory(store, dir);
  await ensureMetaImage(store, layer.id);
  // Make the store the previous version wrote: the pack's head zeroed, the pack and its list
  // named by the pack's new digest, the layer's marker (format.md, "Layer packs") naming it,
  // and no metadata image yet.
  const checked = layerPackOf(store, layer.id)!;
  const old = fs.readFileSync(checked);
  old.fill(0, 0, 1024);
  const oldPack = hashBytes(old);
  const packs = path.join(store.dir, 'packs');
  fs.writeFileSync(path.join(packs, `${oldPack.slice(3)}.erofs`), old);
  fs.renameSync(checked.replace(/\.erofs$/, '.blobs'), path.join(packs, `${oldPack.slice(3)}.blobs`));
  fs.rmSync(checked);
  fs.writeFileSync(path.join(packs, `${layer.id.slice(3)}.layer`), Buffer.concat([Buffer.from('strlayr\x01'), Buffer.from(oldPack.slice(3), 'hex')]));
  fs.rmSync(metaImagePath(store, layer.id));
  t.is(layerPackOf(store, layer.id), path.join(packs, `${oldPack.slice(3)}.erofs`));
  t.is((await verifyStore(store)).problems.length, 0);
  const built = await ensureMetaImage(store, layer.id);
  t.true(built.built);
  t.is('packedNew' in built ? built.packedNew : -1, 0, 'the old pack serves every small blob');
  t.deepEqual(built.packs, [path.join(packs, `${oldPack.slice(3)}.erofs`)]);
  const merged = await mountBuilt(t, built);
  const files = filesUnder(dir);
  t.deepEqual(filesUnder(merged), files);
  for (const f of files) t.true(fs.readFileSync(path.join(merged, f)).equals(fs.readFileSync(path.join(dir, f))), f);
});
