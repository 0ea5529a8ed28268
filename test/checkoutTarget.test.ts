import {randomBytes} from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test from 'ava';
import {strata, tempDir} from './_cli.js';
import {smallDisk} from './_disk.js';
import {storeTemplate} from './_fixtures.js';

// Checkout and export write beside their target and rename at the end: a failure half-way
// leaves nothing. A target where no directory can be made (/proc/x) fails at once.

const template = storeTemplate(async (store, scratch) => {
  const src = path.join(scratch, 'src');
  await fs.mkdir(path.join(src, 'sub'), {recursive: true});
  for (let i = 0; i < 4; i++) await fs.writeFile(path.join(src, 'sub', `f${i}`), randomBytes(1024 * 1024));
  const r = await strata(['import', src, '--tag', 'img:1'], {store});
  if (r.code !== 0) throw new Error(r.stderr);
});

const oneLine = /^strata: [^\n]+\n$/;

test('a checkout that runs out of space half-way leaves nothing behind', async t => {
  const {store} = await template.copy(t);
  const disk = await smallDisk(t, 2); // the image holds 4 MiB
  const r = await strata(['checkout', 'img:1', path.join(disk, 'a', 'out')], {store});
  t.is(r.code, 1);
  t.regex(r.stderr, oneLine);
  t.deepEqual(await fs.readdir(disk), []);
  t.is((await strata(['verify'], {store})).code, 0);
});

for (const args of [['checkout', 'img:1', '/proc/strata-x'], ['image', 'export', 'img:1', '/proc/strata-x'], ['cp', 'img:1:/sub', '/proc/strata-x'], ['init', '--store', '/proc/strata-x/store']]) {
  test(`strata ${args.join(' ')} fails at once with one line`, async t => {
    const {store} = await template.copy(t);
    // A spinning process is killed; the bound is generous because a loaded machine starts node slowly.
    const r = await strata(args, {store, timeoutMs: 90_000});
    t.is(r.code, 1, 'exits by itself, not killed');
    t.regex(r.stderr, oneLine);
  });
}
