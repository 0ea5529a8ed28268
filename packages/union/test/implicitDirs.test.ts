import {execFileSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {type Digest, type Store, importLayer} from '@strata/store';
import {flattenLayers} from '../src/flatten.js';
import {UnionView} from '../src/UnionView.js';
import {openTempStore, tempDir, vp} from './_helpers.js';

// A layer changes only what it names: GNU tar, given only files (`tar -cf up.tar tmp/foo
// root/.bashrc`, common in real images), writes no entry for their directories, and the
// merged view keeps the lower layer's directories as they were (containerd and podman do).

/** A layer of GNU tar's archive of `members` (paths under `root`, in that order). */
async function gnuTarLayer(store: Store, root: string, members: readonly string[]): Promise<Digest> {
  const file = `${root}-${members.length}.tar`;
  execFileSync('tar', ['-C', root, '--no-recursion', '-cf', file, ...members]);
  return (await importLayer(store, file)).layer.id;
}

function tree(t: ExecutionContext, files: Record<string, {mode?: number; content?: string}>, dirs: Record<string, number>): string {
  const root = tempDir(t);
  for (const [d, mode] of Object.entries(dirs)) {
    fs.mkdirSync(path.join(root, d), {recursive: true});
    fs.chmodSync(path.join(root, d), mode);
  }
  for (const [f, {content = f, mode = 0o644}] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, f)), {recursive: true});
    fs.writeFileSync(path.join(root, f), content);
    fs.chmodSync(path.join(root, f), mode);
  }
  for (const p of [...Object.keys(files), ...Object.keys(dirs), '.']) fs.utimesSync(path.join(root, p), 1_700_000_000, 1_700_000_000);
  return root;
}

async function view(store: Store, layers: Digest[]): Promise<UnionView> {
  return UnionView.open(store, await flattenLayers(store, layers));
}

test('directories a GNU tar layer only implies keep the lower layer\'s mode, owner and time', async t => {
  const store = await openTempStore(t);
  const base = tree(t, {'tmp/old': {}}, {tmp: 0o1777, root: 0o700});
  fs.chownSync(path.join(base, 'root'), 0, 0);
  const lower = await gnuTarLayer(store, base, ['.', 'tmp', 'tmp/old', 'root']);
  const up = tree(t, {'tmp/foo': {content: 'foo\n'}, 'root/.bashrc': {content: 'alias ll="ls -l"\n'}}, {tmp: 0o755, root: 0o755});
  const v = await view(store, [lower, await gnuTarLayer(store, up, ['tmp/foo', 'root/.bashrc'])]);
  t.like(await v.lstat(vp('/tmp')), {mode: 0o1777, mtime: 1_700_000_000});
  t.like(await v.lstat(vp('/root')), {mode: 0o700, mtime: 1_700_000_000});
  t.like(await v.lstat(vp('/')), {mtime: 1_700_000_000});
  t.deepEqual((await v.readdir(vp('/tmp'))).map(e => e.name), ['foo', 'old']);
  t.is((await v.readFile(vp('/root/.bashrc'))).toString(), 'alias ll="ls -l"\n');
});

test('an implicit directory over nothing shows the default metadata; an explicit entry still overrides the lower', async t => {
  const store = await openTempStore(t);
  const up = tree(t, {'tmp/foo': {}}, {tmp: 0o750});
  t.like(await (await view(store, [await gnuTarLayer(store, up, ['tmp/foo'])])).lstat(vp('/tmp')), {mode: 0o755, uid: 0, gid: 0, mtime: 0});
  const base = tree(t, {}, {tmp: 0o1777});
  const lower = await gnuTarLayer(store, base, ['tmp']);
  t.like(await (await view(store, [lower, await gnuTarLayer(store, up, ['tmp', 'tmp/foo'])])).lstat(vp('/tmp')), {mode: 0o750});
});

test('an opaque directory without an entry of its own hides the lower entries and keeps the lower directory\'s metadata', async t => {
  const store = await openTempStore(t);
  const base = tree(t, {'tmp/old': {}}, {tmp: 0o1777});
  const lower = await gnuTarLayer(store, base, ['tmp', 'tmp/old']);
  const up = tree(t, {'tmp/.wh..wh..opq': {content: ''}, 'tmp/new': {}}, {tmp: 0o755});
  const v = await view(store, [lower, await gnuTarLayer(store, up, ['tmp/.wh..wh..opq', 'tmp/new'])]);
  t.deepEqual((await v.readdir(vp('/tmp'))).map(e => e.name), ['new']);
  t.like(await v.lstat(vp('/tmp')), {mode: 0o1777, mtime: 1_700_000_000});
});
