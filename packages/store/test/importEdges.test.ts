import {appendFileSync} from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {gzipSync} from 'node:zlib';
import test from 'ava';
import * as tar from 'tar-stream';
import {StoreError, hashBytes, importDirectory} from '../src/index.js';
import {importTarFile} from '../src/import/importTar.js';
import {importOciLayout} from '../src/oci/ociLayout.js';
import {T, openTempStore, run, tempDir, writeTree} from './_helpers.js';
import {writeLayout} from './_oci.js';

// Import edge cases of issue 8 (item 11 and part of 10): each is a real tar made here with
// GNU tar or tar-stream, or a real directory.

type Member = tar.Headers & {body?: string; pax?: Record<string, string>};

async function packTar(dir: string, members: readonly Member[]): Promise<string> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => { pack.on('data', (c: Buffer) => chunks.push(c)); pack.on('end', resolve); pack.on('error', reject); });
  for (const {body, ...header} of members)
    await new Promise<void>((resolve, reject) => pack.entry({mtime: new Date(T * 1000), ...header} as tar.Headers, body ?? '', err => (err ? reject(err) : resolve())));
  pack.finalize();
  await done;
  const file = path.join(dir, `t${Math.random().toString(36).slice(2)}.tar`);
  await fs.writeFile(file, Buffer.concat(chunks));
  return file;
}

test('data after the end-of-archive blocks is ignored, as GNU tar ignores it', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  // tar-stream ends an archive with exactly its two zero blocks: what follows is right after them.
  const clean = await packTar(dir, [{name: 'a', body: 'alpha\n'}, {name: 'sub/', type: 'directory'}, {name: 'sub/b', body: 'beta\n'}]);
  const dirty = path.join(dir, 'dirty.tar');
  await fs.writeFile(dirty, Buffer.concat([await fs.readFile(clean), Buffer.from('trailing bytes that are no tar header '.repeat(40))]));
  t.is(run('tar', ['-tf', dirty]).toString(), 'a\nsub/\nsub/b\n'); // GNU tar reads it
  t.is((await importTarFile(store, dirty)).layer.id, (await importTarFile(store, clean)).layer.id);
});

test('a uid or gid that does not fit 32 bits is refused, not stored as 0', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  for (const pax of [{uid: '4294967296'}, {gid: '18446744073709551616'}, {uid: '-1'}] as Record<string, string>[]) {
    const file = await packTar(dir, [{name: 'f', body: 'x', pax}]);
    await t.throwsAsync(importTarFile(store, file), {code: 'BAD_ARCHIVE'}, JSON.stringify(pax));
  }
  const fits = await packTar(dir, [{name: 'f', body: 'x', pax: {uid: '4294967295'}}]);
  t.truthy((await importTarFile(store, fits)).layer.id);
});

test('a NUL byte inside a pax path, link path or record name is refused', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  for (const m of ([
    {name: 'x', body: 'x', pax: {path: 'evil\0.txt'}},
    {name: 'l', type: 'symlink' as const, linkname: 'x', pax: {linkpath: 'tar\0get'}},
    {name: 'f', body: 'x', pax: {'SCHILY.xattr.user.a\0b': 'v'}},
  ] as Member[])) {
    const file = await packTar(dir, [m]);
    await t.throwsAsync(importTarFile(store, file), {code: 'UNSAFE_PATH'}, JSON.stringify(m.pax));
  }
});

test('a name over NAME_MAX bytes or a path over PATH_MAX is refused at import, in one short line', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  for (const name of ['a'.repeat(256), `d/${'é'.repeat(128)}`, `${'d/'.repeat(2100)}f`]) {
    const file = await packTar(dir, [{name, body: 'x'}]);
    const err = await t.throwsAsync(importTarFile(store, file), {code: 'NAME_TOO_LONG'}, name.slice(0, 20));
    t.true(err!.message.length < 200, err!.message);
  }
  const ok = await packTar(dir, [{name: 'a'.repeat(255), body: 'x'}]); // exactly NAME_MAX is a valid name
  t.is((await importTarFile(store, ok)).layer.entries, 1);
});

test('a whiteout member that names no entry (dir/.wh. or dir/.wh..) is refused, not a whiteout of dir', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  for (const name of ['dir/.wh.', 'dir/.wh..', '.wh.']) {
    const file = await packTar(dir, [{name: 'dir/', type: 'directory'}, {name, body: ''}]);
    await t.throwsAsync(importTarFile(store, file), {code: 'UNSAFE_PATH'}, name);
  }
});

test('the same tree with hardlinks gives the same layer as a directory and as a GNU tar in any member order', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  const src = path.join(dir, 'src');
  await writeTree(src, {'z': 'shared bytes\n', 'm/keep': 'other\n'});
  await fs.link(path.join(src, 'z'), path.join(src, 'a'));
  await fs.link(path.join(src, 'z'), path.join(src, 'm', 'b'));
  const fromDir = await importDirectory(store, src);
  // z first: GNU tar stores z as the file and a, m/b as links to it.
  run('tar', ['-cf', path.join(dir, 'z-first.tar'), '-C', src, '--no-recursion', '.', 'z', 'm', 'm/keep', 'm/b', 'a']);
  run('tar', ['-cf', path.join(dir, 'sorted.tar'), '-C', src, '--sort=name', '.']);
  for (const name of ['z-first.tar', 'sorted.tar']) t.is((await importTarFile(store, path.join(dir, name))).layer.id, fromDir.layer.id, name);
});

test('a file that changes after the walk saw it fails the directory import, which leaves nothing', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  await writeTree(dir, {'a': 'first\n', 'b': 'second\n'});
  const err = await t.throwsAsync(importDirectory(store, dir, {
    // Files are read in byte order in this thread (a small import): after a, b changes.
    onProgress: p => { if (p.files === 1) appendFileSync(path.join(dir, 'b'), 'more\n'); },
  }), {code: 'SOURCE_CHANGED'});
  t.regex(err!.message, /\/b changed while strata read it/);
  t.false(await store.hasBlob(hashBytes(Buffer.from('first\n'))), 'what it wrote is gone');
});

test('a layout that gives one name to two different images is refused before anything is imported', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  const [one, two] = [path.join(dir, 'one'), path.join(dir, 'two')];
  const layer = async (body: string) => {
    const file = await packTar(dir, [{name: 'f', body}]);
    return fs.readFile(file);
  };
  await writeLayout(one, [await layer('one')], {refName: 'app:1'});
  await writeLayout(two, [await layer('two')], {refName: 'app:1'});
  for (const f of await fs.readdir(path.join(two, 'blobs', 'sha256'))) await fs.copyFile(path.join(two, 'blobs', 'sha256', f), path.join(one, 'blobs', 'sha256', f));
  const index = JSON.parse(await fs.readFile(path.join(one, 'index.json'), 'utf8')) as {manifests: unknown[]};
  index.manifests.push(...(JSON.parse(await fs.readFile(path.join(two, 'index.json'), 'utf8')) as {manifests: unknown[]}).manifests);
  await fs.writeFile(path.join(one, 'index.json'), JSON.stringify(index));
  const err = await t.throwsAsync(importOciLayout(store, one), {code: 'BAD_MANIFEST'});
  t.true(err instanceof StoreError);
  t.deepEqual(await store.listImages(), []);
});

test('a layer blob whose digest is wrong is refused before it is expanded', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  // 64 MiB of zeros in 64 KiB of gzip: the bomb must not go off.
  const bomb = await packTar(dir, [{name: 'zeros', body: '\0'.repeat(64 * 1024 * 1024)}]);
  const layout = path.join(dir, 'oci');
  const {layers} = await writeLayout(layout, [await fs.readFile(bomb)], {gzip: true});
  // Other bytes that decompress just as well: the descriptor's digest and size no longer match.
  await fs.writeFile(layers[0]!, gzipSync(await fs.readFile(bomb), {level: 1}));
  const before = store.writeCounters();
  await t.throwsAsync(importOciLayout(store, layout), {code: 'DIGEST_MISMATCH'});
  t.deepEqual(store.writeCounters(), before, 'nothing was expanded or stored');
});

test('maxLayerBytes stops a layer that expands past it, and the import leaves nothing', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  const big = await packTar(dir, [{name: 'a', body: 'a'.repeat(300_000)}, {name: 'b', body: 'b'.repeat(300_000)}]);
  const layout = path.join(dir, 'oci');
  await writeLayout(layout, [await fs.readFile(big)], {gzip: true});
  await t.throwsAsync(importOciLayout(store, layout, {maxLayerBytes: 400_000}), {code: 'LAYER_TOO_LARGE'});
  t.false(await store.hasBlob(hashBytes(Buffer.from('a'.repeat(300_000)))), 'the first file went with the failed import');
  t.is((await importOciLayout(store, layout, {maxLayerBytes: 700_000})).length, 1);
});
