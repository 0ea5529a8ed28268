import {spawn} from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'ava';
import {strata, tempDir, tempStore, type RunResult} from './_cli.js';

const OP = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'strata-op.js');

/** Commit through the library, as the commit command does (the command is not on this branch yet). */
function op(store: string, name: string, seed: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [OP, store, name, String(seed)], {stdio: ['ignore', 'pipe', 'pipe']});
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', d => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', d => { stderr += d; });
    child.on('error', reject);
    child.on('close', code => resolve({code: code ?? -1, stdout, stderr}));
  });
}

/** A small tree of its own plus files every tree shares. */
async function tree(t: import('ava').ExecutionContext, seed: number): Promise<string> {
  const dir = await tempDir(t);
  await fs.mkdir(path.join(dir, 'shared'));
  for (let i = 0; i < 30; i++) await fs.writeFile(path.join(dir, 'shared', `s${i}`), `shared ${i}\n`.repeat(i + 1));
  for (let i = 0; i < 30; i++) await fs.writeFile(path.join(dir, `own${i}`), `tree ${seed} file ${i}\n`.repeat(20));
  await fs.writeFile(path.join(dir, 'big'), Buffer.alloc(300_000, seed));
  return dir;
}

test('8 strata processes at once on one store all succeed and the store verifies', async t => {
  const store = await tempStore(t);
  const [a, b, c] = [await tree(t, 1), await tree(t, 2), await tree(t, 3)];
  t.is((await strata(['import', a, '--tag', 'base:1'], {store})).code, 0);
  const results = await Promise.all([
    strata(['import', b, '--tag', 'b:1'], {store}), strata(['import', c, '--tag', 'c:1', '--on', 'base:1'], {store}),
    strata(['image', 'tag', 'base:1', 'base:2'], {store}), strata(['gc', '--json'], {store}), strata(['gc'], {store}),
    strata(['pin', 'add', 'base:1'], {store}), strata(['df', '--json'], {store}), strata(['verify'], {store}),
    op(store, 'commit', 4), op(store, 'commit', 5),
  ]);
  for (const r of results) t.is(r.code, 0, r.stderr);
  const verify = await strata(['verify', '--json'], {store});
  t.is(verify.code, 0, verify.stdout);
  t.deepEqual(JSON.parse(verify.stdout).problems, []);
  const pins = JSON.parse((await strata(['pin', 'ls', '--json'], {store})).stdout) as {kind: string}[];
  t.deepEqual(pins.map(p => p.kind), ['image']);
  // Every tag the imports and commits made survived the collections that ran beside them.
  const df = JSON.parse((await strata(['df', '--json'], {store})).stdout) as {images: {tags: string[]}[]};
  t.deepEqual(df.images.flatMap(i => i.tags).sort(), ['b:1', 'base:1', 'base:2', 'c:1', 'commit-4:1', 'commit-5:1']);
  t.is((JSON.parse((await strata(['gc', '--json'], {store})).stdout) as {objects: number}).objects, 0);
});
