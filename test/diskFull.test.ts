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
