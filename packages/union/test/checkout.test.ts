import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import {checkout} from '../src/checkout.js';
import {openImageView} from '../src/containers.js';
import {INLINE_MAX} from '@strata/store';
import {DIR, WHITEOUT, containerFrom, hostTree, strataSubject, tempDir, vp} from './_helpers.js';

const BIG = 'b'.repeat(INLINE_MAX + 10); // stored as an object file, copied from there

test('checkout reproduces modes, owners, times, symlinks and hardlinks', async t => {
  const {store, view} = await containerFrom(t, [
    {'/etc/conf': {file: 'conf', mode: 0o640, uid: 100, gid: 101}, '/bin': {dir: true, mode: 0o711, uid: 2, gid: 3}, '/bin/tool': {file: BIG, mode: 0o755},
      '/h1': 'hard', '/d/h2': {link: '/h1'}, '/s': {symlink: '/etc/conf'}, '/up': {symlink: '../..'}, '/gone': 'g', '/empty': DIR},
    {'/gone': WHITEOUT, '/etc/new': 'new'},
  ]);
  const s = strataSubject(view);
  for (const step of [['link', '/etc/new', '/etc/new2'], ['chown', '/etc/new', 7, 8], ['chmod', '/bin/tool', 0o700], ['symlink', 'conf', '/etc/rel'], ['utimes', '/etc/conf', 1_000_000]] as const)
    t.true('ok' in (await s.run(step)), JSON.stringify(step));
  const dir = path.join(tempDir(t), 'out');
  const result = await checkout(store, view, dir);
  t.deepEqual(hostTree(dir), await s.tree());
  for (const p of ['/etc/conf', '/bin', '/bin/tool', '/s', '/etc/new', '/etc/rel', '/empty', '/h1', '/d/h2']) {
    const [want, got] = [await view.lstat(vp(p)), fs.lstatSync(path.join(dir, p))];
    t.deepEqual([got.mode & 0o7777, got.uid, got.gid, Math.floor(got.mtimeMs / 1000)], [want.mode, want.uid, want.gid, want.mtime], p);
  }
  const ino = (p: string) => fs.lstatSync(path.join(dir, p)).ino;
  t.is(ino('/d/h2'), ino('/h1'), 'a lower hardlink stays one file');
  t.is(ino('/etc/new2'), ino('/etc/new'), 'an upper hardlink stays one file');
  t.is(fs.readlinkSync(path.join(dir, 'up')), '../..', 'symlinks are written as stored, never resolved');
  t.deepEqual([result.files, result.hardlinks, result.symlinks], [4, 2, 3]);
  const root = await view.lstat(vp('/'));
  t.is(fs.statSync(dir).mode & 0o7777, root.mode);
});

test('a checkout is independent of the store', async t => {
  const {store, image} = await containerFrom(t, [{'/big': BIG}]);
  const dir = path.join(tempDir(t), 'out');
  await checkout(store, await openImageView(store, image), dir);
  fs.writeFileSync(path.join(dir, 'big'), 'changed');
  t.is((await (await openImageView(store, image)).readFile(vp('/big'))).toString(), BIG);
});

test('a lower hardlink is one file with its first path only where that path still holds its blob, inside the checkout', async t => {
  const {store, image} = await containerFrom(t, [
    {'/a/first': BIG, '/a/second': {link: '/a/first'}, '/b/first': 'old', '/b/second': {link: '/b/first'}, '/c/first': 'c', '/d/second': {link: '/c/first'}},
    {'/b/first': 'new'},
  ]);
  const view = await openImageView(store, image);
  const dir = path.join(tempDir(t), 'out');
  const result = await checkout(store, view, dir);
  const st = (p: string) => fs.statSync(path.join(dir, p));
  t.is(st('a/second').ino, st('a/first').ino, 'same blob at the first path: one inode');
  t.not(st('b/second').ino, st('b/first').ino, 'the first path was replaced: a file of its own');
  t.is(fs.readFileSync(path.join(dir, 'b/second'), 'utf8'), 'old');
  t.is(fs.readFileSync(path.join(dir, 'b/first'), 'utf8'), 'new');
  t.deepEqual([result.hardlinks, result.files], [2, 4]);
  // Checked out from /d alone, the link's first path is outside: the file is written whole.
  const part = path.join(tempDir(t), 'part');
  const sub = await checkout(store, view, part, {from: vp('/d')});
  t.deepEqual([sub.files, sub.hardlinks, fs.readFileSync(path.join(part, 'second'), 'utf8')], [1, 0, 'c']);
  t.is(fs.statSync(path.join(dir, 'b')).mtimeMs, (await view.lstat(vp('/b'))).mtime * 1000, 'directory times are set after the links');
});

test('a checkout of hundreds of files goes through the writing threads and matches the view', async t => {
  const spec: Record<string, string | {file: string; mode: number}> = {};
  for (let i = 0; i < 300; i++) spec[`/d${i % 7}/f${i}`] = i % 50 ? `file ${i}\n`.repeat(i) : {file: BIG + i, mode: 0o751};
  const {store, view} = await containerFrom(t, [spec, {'/d0/f0': 'changed in a layer'}]);
  const s = strataSubject(view);
  t.true('ok' in (await s.run(['write', '/d1/upper', 'from the upper'])));
  const dir = path.join(tempDir(t), 'out');
  const progress: number[] = [];
  const result = await checkout(store, view, dir, {onProgress: files => progress.push(files)});
  t.deepEqual(hostTree(dir), await s.tree());
  t.is(result.files, 301);
  t.is(progress.at(-1), 301, 'progress counts every file written');
});
