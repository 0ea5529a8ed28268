import {execFileSync} from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {strata, tempDir, tempStore} from './_cli.js';
import {peer} from './_peers.js';

// `tar -cf up.tar tmp/foo root/.bashrc` (GNU tar, no entries for tmp/ and root/) on a base
// whose /tmp is 1777 and /root 0700: ls, checkout and the exported image (as umoci unpacks
// it) keep the base's directories, and the exported layer has only the two files.

async function images(t: ExecutionContext): Promise<string> {
  const store = await tempStore(t);
  const work = await tempDir(t);
  const base = path.join(work, 'base'), up = path.join(work, 'up');
  await fs.mkdir(path.join(base, 'tmp'), {recursive: true});
  await fs.mkdir(path.join(base, 'root'));
  await fs.chmod(path.join(base, 'tmp'), 0o1777);
  await fs.chmod(path.join(base, 'root'), 0o700);
  await fs.writeFile(path.join(base, 'tmp', 'old'), 'old\n');
  for (const p of ['tmp/old', 'tmp', 'root', '.']) await fs.utimes(path.join(base, p), 1_700_000_000, 1_700_000_000);
  await fs.mkdir(path.join(up, 'tmp'), {recursive: true});
  await fs.mkdir(path.join(up, 'root'));
  await fs.writeFile(path.join(up, 'tmp', 'foo'), 'foo\n');
  await fs.writeFile(path.join(up, 'root', '.bashrc'), 'alias ll="ls -l"\n');
  execFileSync('tar', ['-C', up, '-cf', path.join(work, 'up.tar'), 'tmp/foo', 'root/.bashrc']);
  t.is((await strata(['import', base, '--tag', 'base:1'], {store})).code, 0);
  const r = await strata(['import', path.join(work, 'up.tar'), '--tag', 'app:1', '--on', 'base:1'], {store});
  t.is(r.code, 0, r.stderr);
  return store;
}

test('ls and checkout keep the lower /tmp and /root under a layer that only implies them', async t => {
  const store = await images(t);
  const ls = JSON.parse((await strata(['ls', 'app:1', '/', '--json'], {store})).stdout) as {name: string; mode: number; mtime: number}[];
  t.like(ls.find(e => e.name === 'tmp'), {mode: 0o1777, mtime: 1_700_000_000});
  t.like(ls.find(e => e.name === 'root'), {mode: 0o700, mtime: 1_700_000_000});
  const out = path.join(await tempDir(t), 'out');
  t.is((await strata(['checkout', 'app:1', out], {store})).code, 0);
  t.is((await fs.stat(path.join(out, 'tmp'))).mode & 0o7777, 0o1777);
  t.is((await fs.stat(path.join(out, 'root'))).mode & 0o7777, 0o700);
  t.is(await fs.readFile(path.join(out, 'tmp', 'foo'), 'utf8'), 'foo\n');
});

test('the exported layer has only the members the source tar had, and umoci unpacks the image with the base\'s modes', async t => {
  const store = await images(t);
  const top = JSON.parse((await strata(['image', 'inspect', 'app:1', '--json'], {store})).stdout).layers[1].id as string;
  const dir = await tempDir(t);
  t.is((await strata(['layer', 'export', top, path.join(dir, 'top.tar'), '--compress', 'none'], {store})).code, 0);
  t.deepEqual(execFileSync('tar', ['-tf', path.join(dir, 'top.tar')], {encoding: 'utf8'}).trim().split('\n'), ['root/.bashrc', 'tmp/foo']);
  t.is((await strata(['image', 'export', 'app:1', path.join(dir, 'oci')], {store})).code, 0);
  peer(t, 'umoci', ['unpack', '--image', `${path.join(dir, 'oci')}:app:1`, path.join(dir, 'bundle')]);
  const rootfs = path.join(dir, 'bundle', 'rootfs');
  t.is((await fs.stat(path.join(rootfs, 'tmp'))).mode & 0o7777, 0o1777);
  t.is((await fs.stat(path.join(rootfs, 'root'))).mode & 0o7777, 0o700);
  t.is(await fs.readFile(path.join(rootfs, 'root', '.bashrc'), 'utf8'), 'alias ll="ls -l"\n');
});
