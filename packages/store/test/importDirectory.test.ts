import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import test from 'ava';
import {type Digest, StoreError, type StoreErrorCode, importDirectory} from '../src/index.js';
import {importTarFile} from '../src/import/importTar.js';
import {type DumpEntry, T, dumpLayer, needRoot, openTempStore, richDir, run, tempDir, writeTree} from './_helpers.js';

/** What directory import must store for `dir`, read independently with lstat. */
async function expected(dir: string): Promise<Record<string, DumpEntry>> {
  const out: Record<string, DumpEntry> = {};
  const firstOf = new Map<string, string>();
  const paths = ['', ...(await fs.readdir(dir, {recursive: true})).map(p => `/${p}`)]
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const p of paths) {
    const st = await fs.lstat(path.join(dir, p));
    const meta = {mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000)};
    if (st.isDirectory()) out[p || '/'] = {kind: 'dir', ...meta};
    else if (st.isSymbolicLink()) out[p] = {kind: 'symlink', ...meta, target: await fs.readlink(path.join(dir, p))};
    else if (st.isFIFO()) out[p] = {kind: 'fifo', ...meta};
    else {
      const content = (await fs.readFile(path.join(dir, p))).toString('latin1');
      const first = firstOf.get(`${st.ino}`);
      if (first) out[p] = {kind: 'hardlink', ...meta, content, target: first};
      else { firstOf.set(`${st.ino}`, p); out[p] = {kind: 'file', ...meta, content}; }
    }
  }
  return out;
}

test('every entry kind of a directory round-trips with modes, owners and mtimes', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  await richDir(dir);
  const {layer} = await importDirectory(store, dir);
  const got = await dumpLayer(store, layer.id);
  t.deepEqual(got, await expected(dir));
  // spot checks that the independent expectation saw what the fixture made
  t.is(got['/a.txt']?.mode, 0o4755);
  t.is(got['/empty']?.mode, 0o1777);
  t.is(got['/sub/deeper']?.mode, 0o2750);
  t.deepEqual([got['/sub/b.txt']?.uid, got['/sub/b.txt']?.gid], [1000, 2000]);
  t.deepEqual([got['/link']?.uid, got['/link']?.mtime], [33, T - 10]);
  t.is(got['/a.txt']?.mtime, T);
  t.is(got['/b-again']?.kind, 'file'); // "/b-again" sorts before "/sub/b.txt": it holds the content
  t.deepEqual(got['/sub/b.txt'], {...got['/b-again'], kind: 'hardlink', target: '/b-again'});
  t.is(layer.entries, Object.keys(got).length - 1);
});

test('a tree the hashing threads list round-trips like a small one: every kind, links across directories, a directory past what a listing reads', async t => {
  // Over 256 files: once they run, the threads list the directories and read their first files; big/
  // holds more files than one listing reads (the rest go to the pool in batches); the
  // hardlinks' first path in byte order is in a directory listed after the others' paths
  // may be; "d" (a directory) and "d-x", "d.x" (files) sort differently with the walk's "/".
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  await richDir(dir);
  const files: Record<string, string> = {};
  for (let i = 0; i < 300; i++) files[`0first/f${i}`] = `first ${i}`; // listed here: the threads start on its files
  for (let i = 0; i < 300; i++) files[`big/f${i}`] = `file ${i} `.repeat(i % 40);
  for (let i = 0; i < 20; i++) files[`d/e${i % 4}/g${i}`] = `g ${i}`;
  Object.assign(files, {'d-x': 'dash', 'd.x': 'dot', 'large/obj': 'L'.repeat(40_000)});
  await writeTree(dir, files);
  await fs.link(path.join(dir, 'big', 'f7'), path.join(dir, 'a-link'));
  await fs.link(path.join(dir, 'big', 'f7'), path.join(dir, 'd', 'e3', 'link'));
  run('setfattr', ['-n', 'user.strata.test', '-v', 'x1', path.join(dir, 'big', 'f9')]);
  run('setfattr', ['-n', 'user.strata.test', '-v', 'x2', path.join(dir, 'd', 'e1')]);
  const {layer} = await importDirectory(store, dir);
  const got = await dumpLayer(store, layer.id);
  t.deepEqual(got['/big/f9']?.xattrs, {'user.strata.test': 'x1'});
  t.deepEqual(got['/d/e1']?.xattrs, {'user.strata.test': 'x2'});
  delete got['/big/f9']!.xattrs;
  delete got['/d/e1']!.xattrs;
  t.deepEqual(got, await expected(dir));
  t.is(got['/a-link']?.kind, 'file'); // "/a-link" sorts first of the three paths: it holds the content
  t.is(got['/big/f7']?.target, '/a-link');
  t.is(got['/d/e3/link']?.target, '/a-link');
  // The same tree as a GNU tar (members in any order) gives the same layer.
  const tarFile = path.join(await tempDir(t), 'tree.tar');
  run('tar', ['-cf', tarFile, '--xattrs', '--xattrs-include=user.*', '-C', dir, '.']);
  t.is((await importTarFile(store, tarFile)).layer.id, layer.id);
});

test('a writable layer the hashing threads list keeps its whiteouts, opaque directories and owner records, and drops overlay bookkeeping', async t => {
  needRoot(); // a whiteout is a 0/0 device; trusted.* xattrs
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  const files: Record<string, string> = {};
  for (let i = 0; i < 300; i++) files[`bulk/f${i}`] = `${i}`; // the threads start on these: z/ is theirs to list
  Object.assign(files, {'z/opq/new': 'n', 'z/owned': 'o', 'z/plain': 'p'});
  await writeTree(dir, files);
  store.upper.writeWhiteout(path.join(dir, 'z', 'gone'));
  store.upper.setOpaque(path.join(dir, 'z', 'opq'));
  run('setfattr', ['-n', 'user.strata.owner', '-v', '1234:5678', path.join(dir, 'z', 'owned')]);
  run('setfattr', ['-n', `${store.upper.xattrPrefix}origin`, '-v', 'x', path.join(dir, 'z', 'plain')]);
  run('setfattr', ['-n', 'user.kept', '-v', 'k', path.join(dir, 'z', 'plain')]);
  const got = await dumpLayer(store, (await importDirectory(store, dir, {upper: store.upper})).layer.id);
  t.deepEqual(got['/z/gone'], {kind: 'whiteout'});
  t.is(got['/z/opq']?.opaque, true);
  t.is(got['/z/opq']?.xattrs, undefined);
  t.deepEqual([got['/z/owned']?.uid, got['/z/owned']?.gid, got['/z/owned']?.xattrs], [1234, 5678, undefined]);
  t.deepEqual(got['/z/plain']?.xattrs, {'user.kept': 'k'});
  t.is(got['/bulk/f7']?.content, '7');
  t.is(Object.keys(got).length, 1 + 1 + 300 + 1 + 5);
});

test('importing the same directory twice stores nothing new', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  await richDir(dir);
  await writeTree(dir, {'big/one.bin': 'x'.repeat(300_000), 'big/two.bin': 'y'.repeat(300_000), 'big/same.bin': 'x'.repeat(300_000)});
  const objects = async () => (await fs.readdir(path.join(store.dir, 'objects'), {recursive: true, withFileTypes: true})).filter(e => e.isFile()).length;
  const first = await importDirectory(store, dir);
  t.is(await objects(), 2); // one.bin and same.bin share one object file
  const second = await importDirectory(store, dir);
  t.is(second.layer.id, first.layer.id);
  t.deepEqual([second.newBytes, second.newObjects], [0, 0]);
  t.is(await objects(), 2);
  t.deepEqual(await fs.readdir(path.join(store.dir, 'tmp')), []);
  t.is((await store.listLayers()).length, 1);
});

test('a copy of a directory elsewhere gives the same layer id', async t => {
  const store = await openTempStore(t);
  const [a, b] = [await tempDir(t), await tempDir(t)];
  await richDir(a);
  run('cp', ['-a', `${a}/.`, b]);
  t.is((await importDirectory(store, a)).layer.id, (await importDirectory(store, b)).layer.id);
});

test('a symlink to a directory imports the directory', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  await writeTree(dir, {'real/a.txt': 'a'});
  await fs.symlink('real', path.join(dir, 'link'));
  t.is((await importDirectory(store, path.join(dir, 'link'))).layer.id, (await importDirectory(store, path.join(dir, 'real'))).layer.id);
});

test('a change of one mode, owner or byte changes the layer id', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  await writeTree(dir, {'a/b/c.txt': 'c', 'd.txt': 'd'});
  const ids = new Set<Digest>();
  ids.add((await importDirectory(store, dir)).layer.id);
  await fs.chmod(path.join(dir, 'a/b/c.txt'), 0o600);
  ids.add((await importDirectory(store, dir)).layer.id);
  await fs.writeFile(path.join(dir, 'a/b/c.txt'), 'C');
  await fs.utimes(path.join(dir, 'a/b'), T, T);
  ids.add((await importDirectory(store, dir)).layer.id);
  t.is(ids.size, 3);
});

test('a large import that uses hashing threads matches a small one that does not', async t => {
  // 300 files run on worker threads (FilePool), 3 files in the calling thread; the shared names must agree.
  const store = await openTempStore(t);
  const [big, small] = [await tempDir(t), await tempDir(t)];
  const files: Record<string, string> = {};
  for (let i = 0; i < 300; i++) files[`d${i % 7}/f${i}`] = `file ${i} `.repeat(i * 7);
  await writeTree(big, files);
  await writeTree(small, {'d0/f0': files['d0/f0']!, 'd1/f155': files['d1/f155']!, 'd6/f293': files['d6/f293']!});
  const bigDump = await dumpLayer(store, (await importDirectory(store, big)).layer.id);
  const smallDump = await dumpLayer(store, (await importDirectory(store, small)).layer.id);
  for (const p of ['/d0/f0', '/d1/f155', '/d6/f293']) t.deepEqual({...smallDump[p], mtime: 0}, {...bigDump[p], mtime: 0});
  t.is(Object.keys(bigDump).length, 308);
  t.is(bigDump['/d6/f293']?.content, files['d6/f293']);
});

test('whiteout names become whiteouts and opaque flags when asked', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  await writeTree(dir, {'etc/.wh.gone': '', 'var/.wh..wh..opq': '', 'var/new': 'n'});
  const got = await dumpLayer(store, (await importDirectory(store, dir, {whiteoutNames: true})).layer.id);
  t.deepEqual(got['/etc/gone'], {kind: 'whiteout'});
  t.is(got['/var']?.opaque, true);
  t.is(got['/etc/.wh.gone'], undefined);
});

const refuses = test.macro(async (t, make: (dir: string) => Promise<string>, code: StoreErrorCode) => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  const source = await make(dir);
  const err = await t.throwsAsync(importDirectory(store, source), {instanceOf: StoreError});
  t.is(err?.code, code);
  t.deepEqual(await store.listLayers(), []);
  t.deepEqual(await store.listTags(), []);
});

test('a missing directory is refused', refuses, async dir => path.join(dir, 'nope'), 'SOURCE_MISSING');
test('a file given as a directory is refused', refuses, async dir => { await writeTree(dir, {f: 'x'}); return path.join(dir, 'f'); }, 'SOURCE_MISSING');
test('a dangling symlink given as the directory is refused', refuses, async dir => {
  await fs.symlink(path.join(dir, 'nowhere'), path.join(dir, 'link'));
  return path.join(dir, 'link');
}, 'SOURCE_MISSING');
let server: net.Server | undefined;
test.after.always(() => server?.close());
test('a socket in a directory is refused', refuses, async dir => {
  await writeTree(dir, {'ok.txt': 'fine'});
  server = net.createServer();
  await new Promise<void>(resolve => server!.listen(path.join(dir, 'sock'), resolve));
  return dir;
}, 'UNSUPPORTED_ENTRY');
test('a socket in a directory is refused (device nodes are entries: test/bytes.test.ts)', refuses, async dir => {
  await writeTree(dir, {'ok.txt': 'fine'});
  const server = net.createServer();
  await new Promise<void>(resolve => server.listen(path.join(dir, 'sock'), resolve));
  server.unref(); // it stays listening (closing it removes the socket file) until the test process ends
  return dir;
}, 'UNSUPPORTED_ENTRY');
test('an import of more than 32 MiB of object files, made durable while the walk goes on, round-trips every file and leaves nothing in tmp/', async t => {
  // Past 32 MiB staged, a background sync places the first files while the threads and the
  // importing thread still read the rest (FilePool, BackgroundSync); the rest at the end.
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  await writeTree(dir, {'a/small': 'x'});
  for (let i = 0; i < 36; i++) {
    await fs.mkdir(path.join(dir, `d${i % 4}`), {recursive: true});
    const bytes = Buffer.alloc(1024 * 1024 + i, i + 1);
    bytes.writeUInt32BE(i, 0);
    await fs.writeFile(path.join(dir, `d${i % 4}`, `f${i}`), bytes);
  }
  const result = await importDirectory(store, dir);
  t.deepEqual(await dumpLayer(store, result.layer.id), await expected(dir));
  t.deepEqual(await fs.readdir(path.join(store.dir, 'tmp')), []);
  t.is(result.newBytes, 36 * 1024 * 1024 + 35 * 36 / 2 + 1);
});

test('a socket that a hashing thread meets fails the import, which leaves no staged file behind', async t => {
  // 300 files start the threads; later directories, listed by them, hold object files
  // (staged unsynced in tmp/ until placed) and then the socket.
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  const files: Record<string, string> = {};
  for (let i = 0; i < 300; i++) files[`a/f${i}`] = `file ${i}`;
  for (let i = 0; i < 8; i++) files[`b/big${i}`] = `${i}`.repeat(40_000 + i);
  await writeTree(dir, files);
  const server = net.createServer();
  await new Promise<void>(resolve => server.listen(path.join(dir, 'b', 'sock'), resolve));
  server.unref();
  await t.throwsAsync(importDirectory(store, dir), {instanceOf: StoreError, code: 'UNSUPPORTED_ENTRY', message: /b\/sock is a socket/});
  t.deepEqual(await fs.readdir(path.join(store.dir, 'tmp')), []);
  t.deepEqual(await store.listLayers(), []);
});
test('a whiteout name in a plain directory is refused', refuses, async dir => { await writeTree(dir, {'a/.wh.b': ''}); return dir; }, 'UNSUPPORTED_ENTRY');
