import {spawnSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {type Digest, type Tree, INLINE_MAX, LayerBuilder, type Store, MAX_PACKS_PER_IMAGE, collectGarbage, diskUsage, ensureMetaImage, metaImagePath, readPackList} from '@strata/store';
import {checkout} from '../src/checkout.js';
import {openImageView} from '../src/containers.js';
import {flattenLayers} from '../src/flatten.js';
import {openTempStore, run, tempDir} from './_helpers.js';

// The metadata image of a merged tree, mounted as strata mounts it (EROFS read-only, then
// overlayfs with the store's objects/ and the image's small-blob packs as data-only lowers),
// against strata's own checkout of the same image: the two must show the same tree.

const T = 1_700_000_000;
type Meta = Omit<Tree, 'opaque' | 'entries'>;
type LeafEntry = Parameters<LayerBuilder['leaf']>[1];
const m = (mode: number, extra: Partial<Meta> = {}): Meta => ({mode, uid: 0, gid: 0, mtime: T, ...extra});
const bytes = (n: number, seed: number) => Buffer.from(Array.from({length: n}, (_, i) => (i * 131 + seed * 7) & 0xff));

/** Stores a layer from [path, entry] pairs ('dir' entries take a Meta); returns its id. */
async function layer(store: Store, entries: [string, LeafEntry | Meta | 'opaque'][], root: Meta = m(0o755)): Promise<Digest> {
  const b = new LayerBuilder();
  b.dir([], root);
  for (const [p, e] of entries) {
    const parts = p.split('/').filter(Boolean);
    if (e === 'opaque') b.opaque(parts);
    else if ('kind' in e) b.leaf(parts, e);
    else b.dir(parts, e);
  }
  const {root: id, entries: n, bytes: size} = await b.write(store);
  await store.putLayer({id, entries: n, bytes: size, created: new Date(0).toISOString()});
  return id;
}

async function file(store: Store, data: Buffer, meta: Meta = m(0o644)): Promise<LeafEntry> {
  return {kind: 'file', ...meta, size: data.length, blob: await store.putBlob(data)};
}

/** An image with every entry kind, files of every size class, long names, deep nesting and two layers. */
async function everyKindImage(store: Store): Promise<{image: Digest; layers: Digest[]}> {
  const sizes = [1, 63, 64, 65, 1000, 2048, 2049, 4096, 16 * 1024, 16 * 1024 + 1, 100_000, 1 << 20];
  const passwd = Buffer.from('root:x:0:0:root:/root:/bin/sh\n');
  const base: [string, LeafEntry | Meta | 'opaque'][] = [
    ['/etc', m(0o755, {mtime: T - 100})],
    ['/etc/passwd', await file(store, passwd)],
    ['/etc/passwd-link', {kind: 'hardlink', ...m(0o644), size: passwd.length, blob: await store.putBlob(passwd), target: '/etc/passwd'}],
    ['/bin', m(0o711, {uid: 2, gid: 3})],
    ['/bin/tool', await file(store, bytes(30_000, 1), m(0o4755, {uid: 1000, gid: 1000, xattrs: {
      'security.capability': Buffer.from('0100000200200000000000000000000000000000', 'hex'),
      'user.note': Buffer.from([0, 1, 255]),
      'trusted.overlay.opaque': Buffer.from('y'),
    }}))],
    ['/link', {kind: 'symlink', ...m(0o777, {uid: 5, gid: 6}), target: 'etc/passwd'}],
    ['/abs', {kind: 'symlink', ...m(0o777), target: '/nowhere/at/all'}],
    ['/dev', m(0o755)],
    ['/dev/null', {kind: 'char', ...m(0o666), devmajor: 1, devminor: 3}],
    ['/dev/sda', {kind: 'block', ...m(0o660, {gid: 6}), devmajor: 8, devminor: 0}],
    ['/run/fifo', {kind: 'fifo', ...m(0o600, {uid: 7})}],
    ['/empty', await file(store, Buffer.alloc(0), m(0o600, {mtime: -5}))],
    ['/old', await file(store, Buffer.from('whited out above'))],
    ['/target', await file(store, Buffer.from('replaced above'))],
    ['/keeps', {kind: 'hardlink', ...m(0o644), size: 14, blob: await store.putBlob(Buffer.from('replaced above')), target: '/target'}],
    ['/opaque/below', await file(store, Buffer.from('hidden by the opaque dir above'))],
    [`/${'n'.repeat(255)}`, await file(store, Buffer.from('long name'))],
    ['/bytes-\udcff', await file(store, Buffer.from('a name that is not UTF-8'))],
    [`/${Array.from({length: 60}, (_, i) => `d${i}`).join('/')}/bottom`, await file(store, Buffer.from('deep'))],
  ];
  for (const n of sizes) base.push([`/sizes/s${n}`, await file(store, bytes(n, n))]);
  for (let i = 0; i < 2000; i++) base.push([`/wide/entry-${i}`, await file(store, Buffer.from(`entry ${i % 50}`))]);
  const top: [string, LeafEntry | Meta | 'opaque'][] = [
    ['/old', {kind: 'whiteout'}],
    ['/target', await file(store, Buffer.from('the new target'))],
    ['/opaque', 'opaque'],
    ['/opaque/above', await file(store, Buffer.from('above'))],
    ['/etc/new', await file(store, bytes(70, 9), m(0o640, {uid: 70_000, gid: 80_000}))],
  ];
  const layers = [await layer(store, base), await layer(store, top, m(0o755, {xattrs: {'user.root': Buffer.from('r')}}))];
  return {image: await store.putImage({layers, config: {}}), layers};
}

/** Everything a process can see of a host tree: per path kind, mode, owner, mtime, size, nlink, target, device, content hash, xattrs. */
function snapshot(root: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const ino = new Map<bigint, string>();
  // Paths as bytes (keys are their latin1 text): names need not be UTF-8.
  const visit = (rel: Buffer) => {
    const abs = Buffer.concat([Buffer.from(`${root}/`), rel]);
    const key = rel.toString('latin1');
    const st = fs.lstatSync(abs, {bigint: true});
    const kind = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'fifo';
    const e: Record<string, unknown> = {kind, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtime: Number(st.mtimeMs / 1000n)};
    if (kind === 'file') {
      e.size = Number(st.size);
      e.sha256 = createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
      // Hardlinks: which earlier path is the same inode (inode numbers differ between the two trees).
      if (st.nlink > 1n) e.sameAs = ino.get(st.ino) ?? (ino.set(st.ino, key), key);
    }
    if (kind === 'symlink') e.target = fs.readlinkSync(abs, {encoding: 'buffer'}).toString('latin1');
    if (kind === 'char' || kind === 'block') e.rdev = Number(st.rdev);
    out[key || '/'] = e;
    if (kind === 'dir') for (const name of fs.readdirSync(abs, {encoding: 'buffer'}).sort(Buffer.compare)) visit(rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name);
  };
  visit(Buffer.alloc(0));
  return out;
}

/** xattrs of every path, as getfattr shows them (one run, hex values). */
function xattrs(root: string): string {
  return run('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root]).split(root).join('<root>');
}

/** Mounts the image, its packs and the overlay as strata does; all unmounted when the test ends. */
function mountMeta(t: ExecutionContext, built: {path: string; objects: string; packs: readonly string[]}): string {
  if (process.getuid?.() !== 0) throw new Error('this test mounts file systems and needs root; CI runs as root');
  const dir = tempDir(t, 'strata-mount-');
  const merged = path.join(dir, 'merged');
  fs.mkdirSync(merged);
  const lowers = [built.path, ...built.packs].map((image, i) => {
    const at = path.join(dir, `lower${i}`);
    fs.mkdirSync(at);
    run('mount', ['-t', 'erofs', '-o', 'ro,loop', image, at]);
    t.teardown(() => { spawnSync('umount', ['-l', at]); });
    return at;
  });
  lowers.splice(1, 0, built.objects);
  run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,redirect_dir=nofollow,index=off,metacopy=off,lowerdir=${lowers.join('::')}`, merged]);
  t.teardown(() => { spawnSync('umount', ['-l', merged]); });
  return merged;
}

const mountsAsCheckout = test.macro(async (t, inlineMax?: number) => {
  const store = await openTempStore(t);
  const {image, layers} = await everyKindImage(store);
  const tree = await flattenLayers(store, layers);
  const built = await ensureMetaImage(store, tree, {inlineMax});
  t.true(built.built);
  t.is(built.packs.length, inlineMax === undefined ? 1 : 0, 'the default threshold (0: every inline blob) packs blobs; 16 KiB does not');
  for (const image of [built.path, ...built.packs]) run('fsck.erofs', ['--extract', image]);
  const merged = mountMeta(t, built);

  const out = path.join(tempDir(t), 'checkout');
  await checkout(store, await openImageView(store, image), out);
  const seen = snapshot(merged);
  const written = snapshot(out);
  // Node's utimes turns a negative time into "now", so checkout cannot write mtime -5; the mount shows the tree's.
  t.is((seen['empty'] as {mtime: number}).mtime, -5);
  (written['empty'] as {mtime: number}).mtime = -5;
  t.deepEqual(seen, written);
  t.is(Object.keys(seen).length, 23 + (60 + 1) + (1 + 10) + (1 + 2000), 'every path, none hidden or added');
  t.false('old' in seen);
  t.true('bytes-\xff' in seen, 'a name that is not UTF-8 keeps its bytes');
  t.is((seen['keeps'] as {sameAs?: string}).sameAs, undefined, 'a hardlink whose target a higher layer replaced is a file of its own');
  t.is((seen['etc/passwd-link'] as {sameAs?: string}).sameAs, 'etc/passwd');
  // strata checkout does not restore xattrs yet: the mount shows the tree's, byte for byte.
  const x = xattrs(merged);
  t.true(x.includes('# file: <root>/bin/tool\nsecurity.capability=0x0100000200200000000000000000000000000000\ntrusted.overlay.opaque=0x79\nuser.note=0x0001ff\n'), x);
  t.true(x.includes('# file: <root>\nuser.root=0x72\n'), x);
});

test('the metadata image of an image with every entry kind, mounted over objects/, shows what strata checkout writes', mountsAsCheckout);
test('so does one that keeps every inline blob in the image', mountsAsCheckout, INLINE_MAX);

test('a metadata image is memoised by its tree, reproducible, and rebuilt after gc removes it', async t => {
  const store = await openTempStore(t);
  const {image, layers} = await everyKindImage(store);
  await store.setTag('every:1' as never, image);
  const tree = await flattenLayers(store, layers);
  const first = await ensureMetaImage(store, tree);
  const bytesOf = () => fs.readFileSync(metaImagePath(store, tree));
  const firstBytes = bytesOf();
  t.false((await ensureMetaImage(store, tree)).built, 'the second call finds the image');
  t.is(first.packs.length, 1);
  const [pack] = first.packs;
  t.deepEqual(readPackList(first.path)?.map(p => path.join(store.dir, 'packs', `${p.slice(3)}.erofs`)), [pack], 'the image names its pack in its first 1 KiB');
  // The pack holds every non-empty inline blob (META_INLINE_MAX is 0), under its digest; larger ones are object files.
  const extracted = path.join(tempDir(t), 'pack');
  run('fsck.erofs', [`--extract=${extracted}`, pack!]);
  const packed = (d: Digest) => path.join(extracted, 'small', d.slice(3, 5), d.slice(5));
  for (const n of [1, 63, 2048, 2049, 4096, 16 * 1024]) t.true(fs.readFileSync(packed(await store.putBlob(bytes(n, n)))).equals(bytes(n, n)), `a ${n}-byte inline blob is in the pack`);
  t.false(fs.existsSync(packed(await store.putBlob(bytes(16 * 1024 + 1, 16 * 1024 + 1)))), 'an object file is not');
  const inPack = fs.readdirSync(path.join(extracted, 'small')).flatMap(fan => fs.readdirSync(path.join(extracted, 'small', fan))).length;
  t.is(inPack, fs.statSync(pack!.replace(/\.erofs$/, '.blobs')).size / 32, 'the pack holds what its list names');

  const derived = (await diskUsage(store)).derived;
  t.is(derived.metaImage.count, 1);
  t.is(derived.metaImage.bytes, firstBytes.length);
  t.is(derived.pack.count, 1, 'df counts the pack');
  t.is(derived.pack.bytes, fs.statSync(pack!).size + inPack * 32, 'with its list of blobs');
  // Live: gc keeps the image and its pack.
  t.is((await collectGarbage(store)).byKind.metaImage.count, 0);
  t.true(fs.existsSync(first.path) && fs.existsSync(pack!));
  // Derived: removed with the last image that needs them, and written again, the same bytes.
  fs.rmSync(first.path);
  const again = await ensureMetaImage(store, tree);
  t.true(again.built);
  t.true(bytesOf().equals(firstBytes), 'the same bytes: the pack is reused');
  t.deepEqual(again.packs, [pack]);
  await store.deleteTag('every:1' as never);
  await store.deleteImage(image);
  const report = await collectGarbage(store);
  t.is(report.byKind.metaImage.count, 1);
  t.is(report.byKind.pack.count, 1);
  t.false(fs.existsSync(first.path));
  t.false(fs.existsSync(pack!));
  t.deepEqual(fs.readdirSync(path.join(store.dir, 'packs')), [], 'and its list of blobs');
  t.is((await collectGarbage(store)).objects, 0, 'a second gc finds nothing');
});

test('a tree whose small blobs are in more packs than a mount takes gets a fresh pack for the rest, and mounts as checkout writes it', async t => {
  const store = await openTempStore(t);
  // Five images, each with small blobs of its own: five packs.
  const blobs: LeafEntry[][] = [];
  for (let i = 0; i < 5; i++) {
    blobs.push(await Promise.all([0, 1].map(j => file(store, bytes(3000 + 100 * i + j, 10 * i + j)))));
    const l = await layer(store, blobs[i]!.map((e, j) => [`/p${i}/f${j}`, e]));
    t.is((await ensureMetaImage(store, await flattenLayers(store, [l]))).packs.length, 1);
  }
  t.is(fs.readdirSync(path.join(store.dir, 'packs')).filter(n => n.endsWith('.erofs')).length, 5);
  // One image with all of them: three packs of those, and one fresh pack with the blobs of the other two.
  const all = await layer(store, blobs.flatMap((es, i) => es.map((e, j): [string, LeafEntry] => [`/all/p${i}/f${j}`, e])));
  const image = await store.putImage({layers: [all], config: {}});
  const built = await ensureMetaImage(store, await flattenLayers(store, [all]));
  t.is(built.packs.length, MAX_PACKS_PER_IMAGE);
  t.is((built as {packedNew: number}).packedNew, 4, 'the blobs of the two packs left out');
  const merged = mountMeta(t, built);
  const out = path.join(tempDir(t), 'checkout');
  await checkout(store, await openImageView(store, image), out);
  t.deepEqual(snapshot(merged), snapshot(out));
});

test('an image built before packs (no pack list) is built again, and gc drops the spilled files of those builds', async t => {
  const store = await openTempStore(t);
  const {image, layers} = await everyKindImage(store);
  await store.setTag('every:1' as never, image);
  const tree = await flattenLayers(store, layers);
  const built = await ensureMetaImage(store, tree);
  // What an older strata left: an image whose first 1 KiB is zeros, and a spilled file.
  const old = fs.readFileSync(built.path);
  old.fill(0, 0, 1024);
  fs.rmSync(built.path);
  fs.writeFileSync(built.path, old);
  const spilled = path.join(store.dir, 'objects', 'small', 'ab', 'c'.repeat(62));
  fs.mkdirSync(path.dirname(spilled), {recursive: true});
  fs.writeFileSync(spilled, 'spilled');
  t.is(readPackList(built.path), undefined);
  t.is((await diskUsage(store)).derived.smallFile.count, 1, 'df shows the old spilled files');
  const again = await ensureMetaImage(store, tree);
  t.true(again.built, 'the old image is built again');
  t.deepEqual(again.packs, built.packs);
  const report = await collectGarbage(store);
  t.is(report.byKind.smallFile.count, 1);
  t.is(report.byKind.metaImage.count, 0, 'the image built again is kept');
  t.false(fs.existsSync(path.join(store.dir, 'objects', 'small')));
  t.true(fs.existsSync(built.packs[0]!));
});
