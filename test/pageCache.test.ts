import {spawnSync} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import {strata, tempStore} from './_cli.js';
import {busyboxRoot, requirePeers} from './_busybox.js';
import {tempDir} from './_cli.js';

const SIZE = 64 * 1024 * 1024;

/** Pages of a file in the page cache, by util-linux fincore. */
function cachedPages(file: string): number {
  const r = spawnSync('fincore', ['--raw', '--noheadings', '--bytes', '--output', 'PAGES', file], {encoding: 'utf8'});
  if (r.status !== 0) throw new Error(`fincore (util-linux) failed: ${r.error?.message ?? r.stderr}`);
  return Number(r.stdout.trim());
}

function cachedKiB(): number {
  return Number(/^Cached:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))![1]);
}

function readAll(file: string): void {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(1024 * 1024);
  try {
    while (fs.readSync(fd, buf) > 0);
  } finally {
    fs.closeSync(fd);
  }
}

test('two containers of one image reading one large file hold it once in the page cache', async t => {
  requirePeers('fincore', 'mkfs.erofs');
  const store = await tempStore(t);
  const root = busyboxRoot(path.join(await tempDir(t), 'root'));
  fs.writeFileSync(path.join(root, 'big.bin'), randomBytes(SIZE));
  t.is((await strata(['import', root, '--tag', 'big:1'], {store})).code, 0);
  for (const name of ['c1', 'c2']) t.is((await strata(['create', 'big:1', '--name', name], {store})).code, 0);
  const m1 = (await strata(['mount', 'c1'], {store})).stdout.trim();
  const m2 = (await strata(['mount', 'c2'], {store})).stdout.trim();
  t.teardown(async () => { await strata(['umount', 'c1'], {store}); await strata(['umount', 'c2'], {store}); });
  const object = spawnSync('find', [path.join(store, 'objects', 'b3'), '-type', 'f', '-size', '+32M'], {encoding: 'utf8'}).stdout.trim();
  t.truthy(object, 'the large file is one object file');
  // The machine's page cache as a whole is the measure (a second copy could be in any inode),
  // so other processes' reads add noise, never take a copy away: the least growth of up to
  // three tries counts, each after every clean page is dropped (a second copy too). A try
  // counts only if the object file was whole in the cache after each read: the kernel may
  // reclaim a fresh page meanwhile (a CI run once found 16,382 of 16,384), and then the
  // growth says nothing.
  const pages = SIZE / 4096;
  let grew = Infinity;
  let whole = 0;
  for (let attempt = 0; attempt < 3 && grew >= SIZE / 1024 / 2; attempt++) {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '1');
    t.true(cachedPages(object) < pages / 4, 'evicted');
    readAll(path.join(m1, 'big.bin'));
    const afterFirst = cachedPages(object);
    const before = cachedKiB();
    readAll(path.join(m2, 'big.bin'));
    const growth = cachedKiB() - before;
    const afterSecond = cachedPages(object);
    if (afterFirst !== pages || afterSecond !== pages) {
      t.log(`try ${attempt + 1} does not count: the object file had ${afterFirst} then ${afterSecond} of its ${pages} pages cached`);
      continue;
    }
    whole++;
    grew = Math.min(grew, growth);
  }
  t.true(whole > 0, 'reading through container 1, then 2, caches the object file itself, whole');
  t.true(grew < SIZE / 1024 / 2, `reading through container 2 added ${grew} KiB of page cache (a second copy would add ${SIZE / 1024})`);
  t.log(`page cache grew ${grew} KiB for the second container's read of ${SIZE / 1024} KiB`);
});

test('small files (in a small-blob pack) are one inode with one set of pages for every container of the image', async t => {
  requirePeers('fincore', 'mkfs.erofs');
  const store = await tempStore(t);
  const root = busyboxRoot(path.join(await tempDir(t), 'root'));
  const sizes = {'tiny.bin': 1000, 'small.bin': 12_000}; // inline blobs (≤ 16 KiB): in a small-blob pack
  for (const [name, size] of Object.entries(sizes)) fs.writeFileSync(path.join(root, name), randomBytes(size));
  t.is((await strata(['import', root, '--tag', 'small:1'], {store})).code, 0);
  for (const name of ['c1', 'c2']) t.is((await strata(['create', 'small:1', '--name', name], {store})).code, 0);
  t.teardown(async () => { await strata(['umount', 'c1'], {store}); await strata(['umount', 'c2'], {store}); });
  const mounts = [];
  for (const name of ['c1', 'c2']) {
    const r = await strata(['mount', name], {store});
    t.is(r.code, 0, r.stderr);
    mounts.push(r.stdout.trim());
  }
  const lowers = (m: string) => {
    const base = path.dirname(m);
    return ['meta', 'pack0'].map(d => fs.statSync(path.join(base, d)).dev);
  };
  // One superblock per image file, whichever container mounted it: every lower file is one inode, its pages one copy.
  t.deepEqual(lowers(mounts[0]!), lowers(mounts[1]!));
  for (const name of Object.keys(sizes)) {
    readAll(path.join(mounts[0]!, name));
    readAll(path.join(mounts[1]!, name));
    t.true(fs.readFileSync(path.join(mounts[1]!, name)).equals(fs.readFileSync(path.join(root, name))));
  }
  const packFile = path.join(path.dirname(mounts[0]!), 'pack0', 'small');
  const inPackOf = (bytes: number) => spawnSync('find', [packFile, '-type', 'f', '-size', `${bytes}c`], {encoding: 'utf8'}).stdout.trim().split('\n').filter(Boolean);
  t.is(inPackOf(1000).length, 1, 'the 1 KB file is a blob of the pack');
  const inPack = inPackOf(12_000);
  t.is(inPack.length, 1, 'and the 12 KB file');
  t.is(cachedPages(inPack[0]!), 3, 'its 12 KB are three pages, cached once');
  // The loop devices go with the last mount.
  for (const name of ['c1', 'c2']) t.is((await strata(['umount', name], {store})).code, 0);
  const loops = spawnSync('losetup', ['--list', '--noheadings', '--output', 'BACK-FILE'], {encoding: 'utf8'}).stdout;
  t.false(loops.includes(fs.realpathSync(store)), loops);
});
