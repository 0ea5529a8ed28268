import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {Readable} from 'node:stream';
import {gzipSync} from 'node:zlib';
import test from 'ava';
import * as tar from 'tar-stream';
import {StoreError, type StoreErrorCode, importDirectory, importLayer} from '../src/index.js';
import {importTarFile, importTarStream} from '../src/import/importTar.js';
import {type DumpEntry, T, dumpLayer, openTempStore, richDir, run, tempDir} from './_helpers.js';

type Member = tar.Headers & {body?: string | Buffer; pax?: Record<string, string>};

/** A tar archive built member by member with tar-stream's pack: any header, however hostile. */
async function makeTar(members: readonly Member[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => { pack.on('data', (c: Buffer) => chunks.push(c)); pack.on('end', resolve); pack.on('error', reject); });
  for (const {body, ...header} of members) {
    await new Promise<void>((resolve, reject) => pack.entry({mtime: new Date(T * 1000), ...header} as tar.Headers, body ?? '', err => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

async function tarFile(t: Parameters<typeof tempDir>[0], bytes: Buffer, name = 'layer.tar'): Promise<string> {
  const file = path.join(await tempDir(t), name);
  await fs.writeFile(file, bytes);
  return file;
}

const m = (mode: number, uid = 0, gid = 0) => ({mode, uid, gid, mtime: T});
const EVERY: Member[] = [
  {name: './', type: 'directory', mode: 0o755},
  {name: 'etc/', type: 'directory', mode: 0o750, uid: 0, gid: 42},
  {name: 'etc/passwd', type: 'file', mode: 0o644, body: 'root:x:0:0\n', pax: {'SCHILY.xattr.user.origin': 'test', 'SCHILY.xattr.security.capability': 'cap'}},
  {name: 'usr/bin/su', type: 'file', mode: 0o4755, body: 'ELF'},
  {name: 'tmp/', type: 'directory', mode: 0o1777},
  {name: 'empty/', type: 'directory', mode: 0o700, uid: 1000, gid: 1000},
  {name: 'usr/bin/sudo', type: 'link', linkname: 'usr/bin/su', mode: 0o4755},
  {name: 'bin', type: 'symlink', linkname: 'usr/bin', mode: 0o777},
  {name: 'dev/null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3},
  {name: 'dev/sda', type: 'block-device', mode: 0o660, gid: 6, devmajor: 8, devminor: 0},
  {name: 'run/pipe', type: 'fifo', mode: 0o600},
  {name: 'var/.wh.cache', type: 'file', mode: 0o600},
  {name: 'opt/.wh..wh..opq', type: 'file', mode: 0o600},
  {name: 'opt/app', type: 'file', mode: 0o755, uid: 5, gid: 6, body: 'app'},
];
const EVERY_DUMP: Record<string, DumpEntry> = {
  '/': {kind: 'dir', ...m(0o755)},
  '/bin': {kind: 'symlink', ...m(0o777), target: 'usr/bin'},
  '/dev': {kind: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0}, // named only as a parent
  '/dev/null': {kind: 'char', ...m(0o666), dev: [1, 3]},
  '/dev/sda': {kind: 'block', ...m(0o660, 0, 6), dev: [8, 0]},
  '/empty': {kind: 'dir', ...m(0o700, 1000, 1000)},
  '/etc': {kind: 'dir', ...m(0o750, 0, 42)},
  '/etc/passwd': {kind: 'file', ...m(0o644), xattrs: {'security.capability': 'cap', 'user.origin': 'test'}, content: 'root:x:0:0\n'},
  '/opt': {kind: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, opaque: true},
  '/opt/app': {kind: 'file', ...m(0o755, 5, 6), content: 'app'},
  '/run': {kind: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0},
  '/run/pipe': {kind: 'fifo', ...m(0o600)},
  '/tmp': {kind: 'dir', ...m(0o1777)},
  '/usr': {kind: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0},
  '/usr/bin': {kind: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0},
  '/usr/bin/su': {kind: 'file', ...m(0o4755), content: 'ELF'},
  '/usr/bin/sudo': {kind: 'hardlink', ...m(0o4755), content: 'ELF', target: '/usr/bin/su'},
  '/var': {kind: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0},
  '/var/cache': {kind: 'whiteout'},
};

test('every entry kind of a tar round-trips, with whiteouts, opaque dirs and xattrs', async t => {
  const store = await openTempStore(t);
  const {layer} = await importTarStream(store, Readable.from([await makeTar(EVERY)]));
  t.deepEqual(await dumpLayer(store, layer.id), EVERY_DUMP);
  t.is(layer.entries, Object.keys(EVERY_DUMP).length - 1);
  t.is(layer.bytes, 'root:x:0:0\n'.length + 3 + 3);
});

test('a gzip tar gives the same layer as the plain tar', async t => {
  const store = await openTempStore(t);
  const plain = await makeTar(EVERY);
  const a = await importTarFile(store, await tarFile(t, plain));
  const b = await importTarFile(store, await tarFile(t, gzipSync(plain), 'layer.tar.gz'));
  t.is(b.layer.id, a.layer.id);
  t.deepEqual([b.newBytes, b.newObjects], [0, 0]);
});

test('a directory and GNU tar of it give the same layer', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  await richDir(dir);
  const tarBytes = run('tar', ['--sort=name', '--numeric-owner', '-cf', '-', '-C', dir, '.']);
  const fromTar = await importTarFile(store, await tarFile(t, tarBytes));
  const fromDir = await importDirectory(store, dir);
  t.deepEqual(await dumpLayer(store, fromTar.layer.id), await dumpLayer(store, fromDir.layer.id));
  t.is(fromTar.layer.id, fromDir.layer.id);
});

test('importLayer takes a tar file as well as a directory', async t => {
  const store = await openTempStore(t);
  const file = await tarFile(t, await makeTar(EVERY));
  t.is((await importLayer(store, file)).layer.id, (await importTarFile(store, file)).layer.id);
});

test('a later member replaces an earlier one at the same path', async t => {
  const store = await openTempStore(t);
  const {layer} = await importTarStream(store, Readable.from([await makeTar([
    {name: 'a', type: 'file', mode: 0o644, body: 'old'},
    {name: 'a', type: 'file', mode: 0o600, body: 'new'},
  ])]));
  t.like((await dumpLayer(store, layer.id))['/a'], {kind: 'file', mode: 0o600, content: 'new'});
});

test('a whiteout of a path the same layer adds is dropped', async t => {
  const store = await openTempStore(t);
  const {layer} = await importTarStream(store, Readable.from([await makeTar([
    {name: 'a', type: 'file', mode: 0o644, body: 'kept'},
    {name: '.wh.a', type: 'file', mode: 0o644},
  ])]));
  t.like((await dumpLayer(store, layer.id))['/a'], {kind: 'file', content: 'kept'});
});

test('a large tar member streams into one object file, once', async t => {
  const store = await openTempStore(t);
  const big = Buffer.alloc(17 * 1024 * 1024, 'strata ');
  const file = await tarFile(t, await makeTar([{name: 'big', type: 'file', mode: 0o644, body: big}, {name: 'copy', type: 'file', mode: 0o644, body: big}]));
  const first = await importTarFile(store, file);
  const second = await importTarFile(store, file);
  t.is(first.newBytes, big.length);
  t.deepEqual([second.newBytes, second.newObjects], [0, 0]);
  const objects = (await fs.readdir(path.join(store.dir, 'objects'), {recursive: true, withFileTypes: true})).filter(e => e.isFile());
  t.is(objects.length, 1);
  t.deepEqual(await fs.readdir(path.join(store.dir, 'tmp')), []);
  const entry = (await store.getTree(first.layer.id)).entries.find(e => e.name === 'big');
  t.true(entry?.kind === 'file' && (await store.readBlob(entry.blob)).equals(big));
});

const refuses = test.macro(async (t, bytes: () => Promise<Buffer>, code: StoreErrorCode) => {
  const store = await openTempStore(t);
  const err = await t.throwsAsync(importTarFile(store, await tarFile(t, await bytes())), {instanceOf: StoreError});
  t.is(err?.code, code);
  t.deepEqual(await store.listLayers(), []);
});
const good = () => makeTar([{name: 'a.txt', type: 'file', mode: 0o644, body: 'x'.repeat(5000)}, {name: 'b.txt', type: 'file', mode: 0o644, body: 'y'}]);

test('a missing tar is refused', async t => {
  const store = await openTempStore(t);
  await t.throwsAsync(importLayer(store, path.join(await tempDir(t), 'nope.tar')), {code: 'SOURCE_MISSING'});
  await t.throwsAsync(importTarFile(store, path.join(await tempDir(t), 'nope.tar')), {code: 'SOURCE_MISSING'});
});
test('a truncated tar is refused', refuses, async () => (await good()).subarray(0, 1200), 'BAD_ARCHIVE');
test('a tar cut inside a header is refused', refuses, async () => (await good()).subarray(0, 5000 + 512 + 100 + 512), 'BAD_ARCHIVE');
test('a corrupt gzip is refused', refuses, async () => { const z = gzipSync(await good()); z.fill(0x55, 20, 60); return z; }, 'BAD_ARCHIVE');
test('a truncated gzip is refused', refuses, async () => { const z = gzipSync(await good()); return z.subarray(0, z.length - 30); }, 'BAD_ARCHIVE');
test('a garbage file is refused', refuses, async () => Buffer.from('this is not a tar archive at all\n'.repeat(40)), 'BAD_ARCHIVE');
test('an empty file is refused', refuses, async () => Buffer.alloc(0), 'BAD_ARCHIVE');
test('an absolute member name is refused', refuses, () => makeTar([{name: '/etc/passwd', type: 'file', mode: 0o644, body: 'x'}]), 'UNSAFE_PATH');
test('a member name that climbs out is refused', refuses, () => makeTar([{name: 'a/../../etc/passwd', type: 'file', mode: 0o644, body: 'x'}]), 'UNSAFE_PATH');
test('a pax path that climbs out is refused', refuses, () => makeTar([{name: 'ok', type: 'file', mode: 0o644, body: 'x', pax: {path: '../escape'}}]), 'UNSAFE_PATH');
test('a symlink whose own name climbs out is refused', refuses, () => makeTar([{name: '../link', type: 'symlink', linkname: '/etc'}]), 'UNSAFE_PATH');
test('a hardlink to a path outside the tar is refused', refuses, () => makeTar([{name: 'a', type: 'file', mode: 0o644, body: 'x'}, {name: 'h', type: 'link', linkname: '../../etc/shadow'}]), 'UNSAFE_PATH');
test('a hardlink to an absolute path is refused', refuses, () => makeTar([{name: 'h', type: 'link', linkname: '/etc/shadow'}]), 'UNSAFE_PATH');
test('a hardlink to a later member is refused', refuses, () => makeTar([{name: 'h', type: 'link', linkname: 'a'}, {name: 'a', type: 'file', mode: 0o644, body: 'x'}]), 'UNSAFE_PATH');
test('a hardlink to a directory is refused', refuses, () => makeTar([{name: 'd/', type: 'directory'}, {name: 'h', type: 'link', linkname: 'd'}]), 'UNSAFE_PATH');
test('a hardlink to a missing member is refused', refuses, () => makeTar([{name: 'h', type: 'link', linkname: 'nothing'}]), 'UNSAFE_PATH');
