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
  requirePeers('fincore', 'mkfs.erofs', 'dd');
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
  // Evict the object's pages (dd's nocache: posix_fadvise DONTNEED over the whole file).
  spawnSync('dd', [`if=${object}`, 'iflag=nocache', 'count=0', 'status=none']);
  t.true(cachedPages(object) < SIZE / 4096 / 4, 'evicted');

  readAll(path.join(m1, 'big.bin'));
  t.is(cachedPages(object), SIZE / 4096, 'reading through container 1 caches the object file itself');
  const before = cachedKiB();
  readAll(path.join(m2, 'big.bin'));
  const grew = cachedKiB() - before;
  t.is(cachedPages(object), SIZE / 4096);
  t.true(grew < SIZE / 1024 / 2, `reading through container 2 added ${grew} KiB of page cache (a second copy would add ${SIZE / 1024})`);
  t.log(`page cache grew ${grew} KiB for the second container's read of ${SIZE / 1024} KiB`);
});
