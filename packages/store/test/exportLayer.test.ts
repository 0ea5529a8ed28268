import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {Readable} from 'node:stream';
import {gunzipSync} from 'node:zlib';
import {spawnSync} from 'node:child_process';
import test from 'ava';
import * as tar from 'tar-stream';
import {type Digest, type Store, exportLayerStream, importDirectory, writeLayerTar} from '../src/index.js';
import {importTarStream} from '../src/import/importTar.js';
import {openTempStore, tempDir, writeTree} from './_helpers.js';
import {type TarEntry, sha256, tarBytes} from './_oci.js';

/** Every kind of entry, in an order where a hardlink names a path that tree order puts later. */
const EVERY_KIND: TarEntry[] = [
  {name: './', type: 'directory', mode: 0o700, uid: 5, gid: 6, mtime: 1_600_000_000},
  {name: 'a.txt', content: 'shared\n', mode: 0o640, uid: 1000, gid: 1000},
  {name: 'a/', type: 'directory', mode: 0o750},
  {name: 'a/z', type: 'link', linkname: 'a.txt'},
  {name: 'a/empty/', type: 'directory', mode: 0o1777},
  {name: 'bin/', type: 'directory'},
  {name: 'bin/su', content: 'setuid', mode: 0o4755},
  {name: 'bin/none', content: '', mode: 0},
  {name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox'},
  {name: 'bin/up', type: 'symlink', linkname: '../../..'},
  {name: 'dev/', type: 'directory'},
  {name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666},
  {name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0, mode: 0o660, gid: 6},
  {name: 'dev/pipe', type: 'fifo', mode: 0o600},
  {name: 'x/', type: 'directory'},
  {name: 'x/attrs', content: 'x', pax: {'SCHILY.xattr.user.comment': 'hello', 'SCHILY.xattr.security.capability': 'cap'}},
  {name: 'x/.wh.gone', content: ''},
  {name: 'opq/', type: 'directory'},
  {name: 'opq/.wh..wh..opq', content: ''},
  {name: 'opq/kept', content: 'k'},
  {name: 'long/'.repeat(30) + 'name-é-ü', content: 'a long, non-ASCII path'},
  {name: 'big', content: Buffer.alloc(200_000, 7)},
  {name: 'userns', content: 'remapped', uid: 300_000, gid: 4_000_000_000, pax: {uid: '300000', gid: '4000000000'}},
];

async function importBytes(store: Store, bytes: Buffer): Promise<Digest> {
  return (await importTarStream(store, Readable.from([bytes]))).layer.id;
}

async function exportBytes(store: Store, id: Digest): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of exportLayerStream(store, id)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function members(bytes: Buffer): Promise<tar.Headers[]> {
  const extract = tar.extract();
  Readable.from([bytes]).pipe(extract);
  const out: tar.Headers[] = [];
  for await (const e of extract) {
    out.push(e.header);
    e.resume();
  }
  return out;
}

test('an exported layer imports back as the same layer id, with every kind of entry', async t => {
  const store = await openTempStore(t);
  const id = await importBytes(store, await tarBytes(EVERY_KIND));
  const again = await importBytes(store, await exportBytes(store, id));
  t.is(again, id);
});

test('exporting a layer twice gives the same bytes', async t => {
  const store = await openTempStore(t);
  const id = await importBytes(store, await tarBytes(EVERY_KIND));
  t.true((await exportBytes(store, id)).equals(await exportBytes(store, id)));
});

test('the exported tar speaks OCI: whiteout files, an opaque marker, links after their target, xattrs as pax, no user names', async t => {
  const store = await openTempStore(t);
  const id = await importBytes(store, await tarBytes(EVERY_KIND));
  const hs = await members(await exportBytes(store, id));
  const names = hs.map(h => h.name);
  t.is(names[0], './', 'the root has metadata of its own');
  t.true(names.includes('x/.wh.gone'));
  t.true(names.includes('opq/.wh..wh..opq'));
  t.true(names.indexOf('opq/.wh..wh..opq') < names.indexOf('opq/kept'), 'the opaque marker comes before the directory\'s entries');
  const link = hs.find(h => h.name === 'a/z')!;
  t.like(link, {type: 'link', linkname: 'a.txt'});
  t.true(names.indexOf('a/z') > names.indexOf('a.txt'), 'a link comes after its target');
  t.like(hs.find(h => h.name === 'dev/null'), {type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666});
  t.like(hs.find(h => h.name === 'bin/none'), {type: 'file', mode: 0});
  t.like(hs.find(h => h.name === 'bin/su'), {mode: 0o4755});
  t.like((hs.find(h => h.name === 'x/attrs') as {pax?: Record<string, string>}).pax, {'SCHILY.xattr.security.capability': 'cap', 'SCHILY.xattr.user.comment': 'hello'});
  t.true(hs.every(h => !h.uname && !h.gname));
  t.like((hs.find(h => h.name === 'userns') as {pax?: Record<string, string>}).pax, {uid: '300000', gid: '4000000000'});
  // The source names only the file: the 30 directories it implies get no entries of their own.
  t.deepEqual(names.filter(n => n.startsWith('long/')), ['long/'.repeat(30) + 'name-é-ü']);
});

test('a layer whose root has the default metadata gets no ./ entry', async t => {
  const store = await openTempStore(t);
  const id = await importBytes(store, await tarBytes([{name: 'f', content: 'x'}]));
  t.deepEqual((await members(await exportBytes(store, id))).map(h => h.name), ['f']);
});

test('a directory import with hardlinks exports and re-imports as the same layer', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  await writeTree(dir, {'a.txt': 'one', 'a/b': 'two', 'empty': null});
  await fs.link(path.join(dir, 'a.txt'), path.join(dir, 'a/z'));
  await fs.symlink('a.txt', path.join(dir, 'ln'));
  const id = (await importDirectory(store, dir)).layer.id;
  t.is(await importBytes(store, await exportBytes(store, id)), id);
});

for (const compression of ['gzip', 'zstd', 'none'] as const) {
  test(`writeLayerTar with ${compression} reports the digest of the file and the DiffID of the plain tar`, async t => {
    const store = await openTempStore(t);
    const id = await importBytes(store, await tarBytes(EVERY_KIND));
    const dir = await tempDir(t);
    const file = path.join(dir, 'layer');
    const blob = await writeLayerTar(store, id, file, compression);
    const bytes = await fs.readFile(file);
    const plain = await exportBytes(store, id);
    t.is(blob.digest, sha256(bytes));
    t.is(blob.size, bytes.length);
    t.is(blob.diffId, sha256(plain));
    const unpacked = compression === 'gzip' ? gunzipSync(bytes) : compression === 'zstd' ? spawnSync('zstd', ['-dc'], {input: bytes, maxBuffer: 1 << 26}).stdout : bytes;
    t.true(unpacked.equals(plain));
    const second = path.join(dir, 'again');
    await writeLayerTar(store, id, second, compression);
    t.true((await fs.readFile(second)).equals(bytes), 'byte-identical when written twice');
  });
}

test('writeLayerTar refuses a file that exists and an unknown layer', async t => {
  const store = await openTempStore(t);
  const id = await importBytes(store, await tarBytes([{name: 'f', content: 'x'}]));
  const file = path.join(await tempDir(t), 'exists');
  await fs.writeFile(file, 'mine');
  await t.throwsAsync(writeLayerTar(store, id, file), {code: 'TARGET_EXISTS'});
  t.is(await fs.readFile(file, 'utf8'), 'mine');
  await t.throwsAsync(writeLayerTar(store, `b3:${'0'.repeat(64)}` as Digest, path.join(path.dirname(file), 'new')), {code: 'UNKNOWN_LAYER'});
  t.false(await fs.stat(path.join(path.dirname(file), 'new')).then(() => true, () => false), 'a failed export leaves no file');
});
