import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test from 'ava';
import {strata, tempDir, tempStore, type RunResult} from './_cli.js';

/** A small tree of its own plus files every tree shares. */
async function tree(t: import('ava').ExecutionContext, seed: number): Promise<string> {
  const dir = await tempDir(t);
  await fs.mkdir(path.join(dir, 'shared'));
  for (let i = 0; i < 30; i++) await fs.writeFile(path.join(dir, 'shared', `s${i}`), `shared ${i}\n`.repeat(i + 1));
  for (let i = 0; i < 30; i++) await fs.writeFile(path.join(dir, `own${i}`), `tree ${seed} file ${i}\n`.repeat(20));
  await fs.writeFile(path.join(dir, 'big'), Buffer.alloc(300_000, seed));
  return dir;
}

/** create, fs write (a small and a large file), commit, rm: one strata process after another. */
async function commitChain(store: string, seed: number): Promise<RunResult[]> {
  const name = `w${seed}`;
  const steps: [string[], string?][] = [
    [['create', 'base:1', '--name', name]],
    [['fs', 'write', name, `/changed-${seed}`], `commit ${seed}\n`.repeat(50)],
    [['fs', 'write', name, `/big-${seed}`], 'x'.repeat(100_000 + seed)],
    [['commit', name, '--tag', `commit-${seed}:1`]],
    [['rm', name]],
  ];
  const results: RunResult[] = [];
  for (const [args, input] of steps) {
    const r = await strata(args, {store, ...(input !== undefined ? {input} : {})});
    results.push({...r, stderr: `${args.join(' ')}: ${r.stderr}`});
    if (r.code !== 0) break;
  }
  return results;
}

test('8+ strata processes at once on one store (import, tag, create, fs write, commit, gc) all succeed and the store verifies', async t => {
  const store = await tempStore(t);
  const [a, b, c] = [await tree(t, 1), await tree(t, 2), await tree(t, 3)];
  t.is((await strata(['import', a, '--tag', 'base:1'], {store})).code, 0);
  const inspect = async (image: string) => {
    const {id, layers, config} = JSON.parse((await strata(['image', 'inspect', image, '--json'], {store})).stdout) as Record<string, unknown>;
    return {id, layers, config};
  };
  const before = await inspect('base:1');
  const results = (await Promise.all([
    strata(['import', b, '--tag', 'b:1'], {store}), strata(['import', c, '--tag', 'c:1', '--on', 'base:1'], {store}),
    strata(['image', 'tag', 'base:1', 'base:2'], {store}), strata(['gc', '--json'], {store}), strata(['gc'], {store}),
    strata(['pin', 'add', 'base:1'], {store}), strata(['df', '--json'], {store}), strata(['verify'], {store}),
    commitChain(store, 4), commitChain(store, 5),
  ])).flat();
  for (const r of results) t.is(r.code, 0, r.stderr);
  const verify = await strata(['verify', '--json'], {store});
  t.is(verify.code, 0, verify.stdout);
  t.deepEqual(JSON.parse(verify.stdout).problems, []);
  const pins = JSON.parse((await strata(['pin', 'ls', '--json'], {store})).stdout) as {kind: string}[];
  t.deepEqual(pins.map(p => p.kind), ['image']);
  // Every tag the imports and commits made survived the collections that ran beside them.
  const df = JSON.parse((await strata(['df', '--json'], {store})).stdout) as {images: {tags: string[]}[]; containers: unknown[]};
  t.deepEqual(df.images.flatMap(i => i.tags).sort(), ['b:1', 'base:1', 'base:2', 'c:1', 'commit-4:1', 'commit-5:1']);
  t.deepEqual(df.containers, []);
  // The image tagged before is unchanged, and the committed files read back through the real binary.
  t.deepEqual(await inspect('base:1'), before);
  t.is((await strata(['cat', 'base:1', '/own7'], {store})).stdout, 'tree 1 file 7\n'.repeat(20));
  for (const seed of [4, 5]) t.is((await strata(['cat', `commit-${seed}:1`, `/changed-${seed}`], {store})).stdout, `commit ${seed}\n`.repeat(50));
  t.is((await strata(['cat', 'commit-5:1', '/big-5'], {store})).stdout.length, 100_005);
  t.is((JSON.parse((await strata(['gc', '--json'], {store})).stdout) as {objects: number}).objects, 0);
});
