import {spawn} from 'node:child_process';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'ava';
import {strata, tempStore, type RunResult} from './_cli.js';

const OP = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'strata-op.js');

/** Import and commit through the library, as the import and commit commands do. */
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

test('8 processes at once on one store all succeed and the store verifies', async t => {
  const store = await tempStore(t);
  t.is((await op(store, 'import', 1)).code, 0);
  const results = await Promise.all([
    op(store, 'import', 2), op(store, 'import', 3), op(store, 'commit', 4), op(store, 'commit', 5),
    strata(['gc', '--json'], {store}), strata(['gc'], {store}), strata(['pin', 'add', 'op-1:1'], {store}), strata(['df', '--json'], {store}),
  ]);
  for (const r of results) t.is(r.code, 0, r.stderr);
  const verify = await strata(['verify', '--json'], {store});
  t.is(verify.code, 0, verify.stdout);
  t.deepEqual(JSON.parse(verify.stdout).problems, []);
  const pins = JSON.parse((await strata(['pin', 'ls', '--json'], {store})).stdout) as {kind: string}[];
  t.deepEqual(pins.map(p => p.kind), ['image']);
  // Every tag the imports and commits made survived the collections that ran beside them.
  const df = JSON.parse((await strata(['df', '--json'], {store})).stdout) as {images: {tags: string[]}[]};
  t.deepEqual(df.images.flatMap(i => i.tags).sort(), ['commit-4:1', 'commit-5:1', 'op-1:1', 'op-2:1', 'op-3:1']);
});
