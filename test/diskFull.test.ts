import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';
import {randomBytes} from 'node:crypto';
import test from 'ava';
import {strata, tempDir} from './_cli.js';
import {smallDisk} from './_disk.js';

const OP = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'strata-op.js');

function op(store: string, ...args: string[]) {
  return spawnSync(process.execPath, [OP, store, ...args], {encoding: 'utf8'});
}

for (const [title, files] of [
  ['one large file', [[5_000_000, 1]]],
  ['many small files (the index fills)', [[2000, 2500]]],
] as const) {
  test(`a disk that fills while importing ${title}: NO_SPACE in one line, then nothing lost`, async t => {
    const mnt = await smallDisk(t, 3);
    const store = path.join(mnt, 'store');
    t.is((await strata(['init'], {store})).code, 0);
    t.is(op(store, 'import', '1').status, 0);
    const src = await tempDir(t);
    for (const [size, count] of files) for (let i = 0; i < count; i++) await fs.writeFile(path.join(src, `f${i}`), randomBytes(size));
    const r = await strata(['import', src, '--tag', 'big:1'], {store});
    t.is(r.code, 1);
    t.regex(r.stderr, /^strata: [^\n]*disk is full[^\n]*\n$/);
    // More room (as a user freeing space): the store opens, verifies, keeps its image, and gc takes the leftovers.
    t.is(spawnSync('mount', ['-o', 'remount,size=64m', mnt]).status, 0);
    const v = await strata(['verify'], {store});
    t.is(v.code, 0, v.stdout + v.stderr);
    t.deepEqual((JSON.parse((await strata(['df', '--json'], {store})).stdout) as {images: {tags: string[]}[]}).images.map(i => i.tags), [['op-1:1']]);
    t.is((await strata(['gc'], {store})).code, 0);
    t.is((await strata(['verify'], {store})).code, 0);
    t.is((await strata(['import', src, '--tag', 'big:1'], {store})).code, 0);
    t.is((await strata(['verify'], {store})).code, 0);
  });
}

// A failed import removes what it wrote, and the index always keeps room to be opened:
// on the same full disk (no room freed), gc, verify and images work, and gc finds nothing left.

/** Sources bigger than the disk: a tar of many small files (the index fills), a tar of larger ones (object files fill), and an OCI layout and docker archive of the latter. */
const sources = (async () => {
  const dir = await fs.mkdtemp(path.join((await import('node:os')).tmpdir(), 'strata-full-'));
  process.once('exit', () => { spawnSync('rm', ['-rf', dir]); });
  const made = async (name: string, count: number, size: number) => {
    const src = path.join(dir, name);
    await fs.mkdir(src);
    for (let i = 0; i < count; i++) await fs.writeFile(path.join(src, `f${i}`), randomBytes(size));
    const tar = spawnSync('tar', ['-cf', `${src}.tar`, '-C', src, '.']);
    if (tar.status !== 0) throw new Error('GNU tar is needed');
    return src;
  };
  await made('small', 2500, 2000);
  const large = await made('large', 10, 500_000);
  const store = path.join(dir, 'store');
  for (const args of [['init'], ['import', large, '--tag', 'large:1'], ['image', 'export', 'large:1', path.join(dir, 'oci'), '--compress', 'none'], ['image', 'export', 'large:1', path.join(dir, 'docker.tar'), '--format', 'docker']]) {
    const r = await strata(args, {store});
    if (r.code !== 0) throw new Error(r.stderr);
  }
  return dir;
})();

for (const [title, cmd, source] of [
  ['a tar of many small files', 'import', 'small.tar'],
  ['a tar of large files', 'import', 'large.tar'],
  ['an OCI layout', 'image import', 'oci'],
  ['a docker archive', 'image import', 'docker.tar'],
] as const) {
  test(`a failed import of ${title} on a full disk leaves nothing, and the store still opens for gc`, async t => {
    const from = path.join(await sources, source);
    const mnt = await smallDisk(t, 3);
    const store = path.join(mnt, 'store');
    t.is((await strata(['init'], {store})).code, 0);
    const r = await strata([...cmd.split(' '), from], {store});
    t.is(r.code, 1);
    t.regex(r.stderr, /^strata: [^\n]*disk is full[^\n]*\n$/);
    for (const args of [['images'], ['verify']]) t.is((await strata(args, {store})).code, 0, args.join(' '));
    t.like(JSON.parse((await strata(['gc', '--json'], {store})).stdout), {objects: 0}, 'nothing was left for gc');
    const files = (await fs.readdir(path.join(store, 'objects'), {recursive: true, withFileTypes: true})).filter(e => !e.isDirectory());
    t.deepEqual(files.map(e => e.name), [], 'no object file is left');
  });
}
