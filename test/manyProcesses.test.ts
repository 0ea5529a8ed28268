import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test from 'ava';
import {strata, tempDir, tempStore, type RunResult} from './_cli.js';

/** A tree of `files` small files of their own (in directories of 100), for an import that takes a while. */
async function bigTree(t: import('ava').ExecutionContext, files: number): Promise<string> {
  const dir = await tempDir(t);
  const writes: Promise<void>[] = [];
  for (let d = 0; d < files / 100; d++) {
    await fs.mkdir(path.join(dir, `d${d}`));
    for (let f = 0; f < 100; f++) writes.push(fs.writeFile(path.join(dir, `d${d}`, `f${f}`), `directory ${d} file ${f}\n`.repeat(1 + (f % 7))));
    if (writes.length >= 2000) await Promise.all(writes.splice(0));
  }
  await Promise.all(writes);
  return dir;
}

/** A small tree: files its own, files every seed shares, and one large file (an object file). */
async function smallTree(t: import('ava').ExecutionContext, seed: number): Promise<string> {
  const dir = await tempDir(t);
  await fs.mkdir(path.join(dir, 'shared'));
  for (let i = 0; i < 20; i++) await fs.writeFile(path.join(dir, 'shared', `s${i}`), `shared ${i}\n`.repeat(i + 1));
  for (let i = 0; i < 20; i++) await fs.writeFile(path.join(dir, `own${i}`), `tree ${seed} file ${i}\n`.repeat(20));
  await fs.writeFile(path.join(dir, 'big'), Buffer.alloc(300_000, seed));
  return dir;
}

interface Timed extends RunResult {
  readonly args: readonly string[];
  readonly ms: number;
  readonly start: number;
  readonly end: number;
}

async function timed(args: readonly string[], store: string, input?: string): Promise<Timed> {
  const start = Date.now();
  const r = await strata(args, {store, ...(input !== undefined ? {input} : {})});
  return {...r, args, ms: Date.now() - start, start, end: Date.now()};
}

/** Waits until a strata process other than the test holds a lease on the store (it has begun its work). */
async function untilLeaseAppears(store: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const names = await fs.readdir(path.join(store, 'leases')).catch(() => [] as string[]);
    if (names.length > 0) return;
    await new Promise(r => setTimeout(r, 10));
  }
  throw new Error('no strata process took a lease on the store');
}

test('ps, images, layers, ls, cat, diff, df and inspect answer while a large import runs: none waits for it', async t => {
  const store = await tempStore(t);
  const small = await smallTree(t, 1);
  t.is((await strata(['import', small, '--tag', 'base:1'], {store})).code, 0);
  t.is((await strata(['create', 'base:1', '--name', 'c1'], {store})).code, 0);
  t.is((await strata(['fs', 'write', 'c1', '/changed'], {store, input: 'changed\n'})).code, 0);
  // Large enough that a reader's fixed cost (a process, a snapshot of the index) is a small
  // part of the import's time on a fast machine too (40,000 files took 4–7 s here).
  const big = await bigTree(t, 60_000);

  let importing = true;
  const importRun = timed(['import', big, '--tag', 'big:1'], store).finally(() => { importing = false; });
  await untilLeaseAppears(store);
  const started = Date.now();
  const calls = [['ps'], ['images'], ['layers'], ['ls', 'base:1', '/'], ['cat', 'base:1', '/own3'], ['diff', 'c1'], ['df'], ['image', 'inspect', 'base:1']];
  const readers: Timed[] = [];
  // Four at a time (on 2 cores, more at once would measure the machine, not strata): every
  // kind once, then more while the import runs, up to 20.
  for (let wave = 0; readers.length < calls.length || (importing && readers.length < 20); wave++)
    readers.push(...await Promise.all(calls.slice(0, 4).map((_, i) => timed(calls[(wave * 4 + i) % calls.length]!, store))));
  const imp = await importRun;
  t.is(imp.code, 0, imp.stderr);
  const importMs = imp.end - started;
  t.log(`import: ${imp.ms} ms; readers: ${readers.map(r => r.ms).join(', ')} ms`);
  t.true(readers.some(r => r.start < started + importMs / 2), 'no reader began in the import\'s first half');
  for (const r of readers) {
    t.is(r.code, 0, `${r.args.join(' ')}: ${r.stderr}`);
    // One that waited for the import's hold of the index would end with it: those that began
    // in its first half must end before it (later ones may end after it, having answered).
    if (r.start < started + importMs / 2) t.true(r.end < imp.end, `${r.args.join(' ')}, begun in the import's first half, ended after it`);
    // No bound on each reader's own time: how long a ps takes beside an import on a loaded
    // machine is a race between the two (a third of the import's time once at load 20-30,
    // and df reads every entry the import has written so far). The rule above is what says
    // none was held up.
  }
  // What the readers said is right.
  const byArgs = (a: string) => readers.find(r => r.args.join(' ') === a)!;
  t.regex(byArgs('ps').stdout, /c1/);
  t.regex(byArgs('images').stdout, /base/);
  t.is(byArgs('cat base:1 /own3').stdout, 'tree 1 file 3\n'.repeat(20));
  t.regex(byArgs('diff c1').stdout, /A\s+\/changed/);
  // And the import's own result is whole.
  t.is((await strata(['cat', 'big:1', '/d399/f6'], {store})).stdout, 'directory 399 file 6\n'.repeat(7));
  t.is((await strata(['verify'], {store})).code, 0);
});

test('4 imports, 4 create/write/commit chains and 2 checkouts with gc running in a loop: everything each process reported is intact', async t => {
  const store = await tempStore(t);
  t.is((await strata(['import', await smallTree(t, 0), '--tag', 'base:1'], {store})).code, 0);
  const trees = await Promise.all([1, 2, 3, 4].map(s => smallTree(t, s)));
  const outs = await Promise.all([1, 2].map(() => tempDir(t)));

  let collecting = true;
  const gcRuns: Timed[] = [];
  const gcLoop = (async () => {
    while (collecting) gcRuns.push(await timed(['gc', '--json'], store));
  })();
  const chain = async (seed: number): Promise<Timed[]> => {
    const name = `w${seed}`;
    const out: Timed[] = [];
    for (const [args, input] of [
      [['create', 'base:1', '--name', name]],
      [['fs', 'write', name, `/changed-${seed}`], `commit ${seed}\n`.repeat(50)],
      [['fs', 'write', name, `/big-${seed}`], 'x'.repeat(100_000 + seed)],
      [['commit', name, '--tag', `commit-${seed}:1`]],
      [['rm', name]],
    ] as [string[], string?][]) {
      const r = await timed(args, store, input);
      out.push(r);
      if (r.code !== 0) break;
    }
    return out;
  };
  const work = (await Promise.all([
    ...trees.map((dir, i) => timed(['import', dir, '--tag', `imp-${i + 1}:1`], store)),
    ...[5, 6, 7, 8].map(chain),
    ...outs.map(o => timed(['checkout', 'base:1', path.join(o, 'root')], store)),
  ])).flat();
  collecting = false;
  await gcLoop;
  for (const r of [...work, ...gcRuns]) t.is(r.code, 0, `${r.args.join(' ')}: ${r.stderr}`);
  t.true(gcRuns.length >= 2, `gc ran ${gcRuns.length} times`);
  t.log(`gc ran ${gcRuns.length} times beside ${work.length} other commands`);

  const verify = await strata(['verify', '--json'], {store});
  t.is(verify.code, 0, verify.stdout);
  t.deepEqual(JSON.parse(verify.stdout).problems, []);
  for (const i of [1, 2, 3, 4]) {
    t.is((await strata(['cat', `imp-${i}:1`, '/own7'], {store})).stdout, `tree ${i} file 7\n`.repeat(20));
    t.is((await strata(['cat', `imp-${i}:1`, '/big'], {store})).stdout, Buffer.alloc(300_000, i).toString());
  }
  for (const seed of [5, 6, 7, 8]) {
    t.is((await strata(['cat', `commit-${seed}:1`, `/changed-${seed}`], {store})).stdout, `commit ${seed}\n`.repeat(50));
    t.is((await strata(['cat', `commit-${seed}:1`, `/big-${seed}`], {store})).stdout.length, 100_000 + seed);
  }
  for (const o of outs) {
    t.is(await fs.readFile(path.join(o, 'root', 'own7'), 'utf8'), 'tree 0 file 7\n'.repeat(20));
    t.deepEqual(await fs.readFile(path.join(o, 'root', 'big')), Buffer.alloc(300_000, 0));
  }
  // Nothing is left for a last gc but the trash of the earlier ones, and no lease stays behind.
  const last = JSON.parse((await strata(['gc', '--json'], {store})).stdout) as {byKind: Record<string, {count: number}>};
  t.is(last.byKind.blob!.count + last.byKind.tree!.count + last.byKind.image!.count, 0);
  t.deepEqual(await fs.readdir(path.join(store, 'leases')).catch(() => []), []);
});

test('a write that cannot get the store in time exits 75 and names who holds it', async t => {
  const store = await tempStore(t);
  t.is((await strata(['import', await smallTree(t, 1), '--tag', 'base:1'], {store})).code, 0);
  const importing = strata(['import', await bigTree(t, 20_000), '--tag', 'big:1'], {store});
  await untilLeaseAppears(store);
  // With no time to wait, a tag meets the store held by the import (which keeps it between
  // its batches while nobody asks) at least once; when it finds the store free, it tags.
  let refused: RunResult | undefined;
  for (let i = 0; i < 100 && !refused; i++) {
    const r = await strata(['image', 'tag', 'base:1', `other:${i}`], {store, env: {STRATA_LOCK_TIMEOUT_MS: '0'}});
    if (r.code === 75) refused = r;
    else t.is(r.code, 0, r.stderr);
  }
  t.is((await importing).code, 0);
  t.truthy(refused, 'a zero timeout met a busy store at least once');
  t.regex(refused!.stderr, /^strata: the store is busy: (strata process \d+ \(strata import|another strata process)/m);
  t.is((await strata(['verify'], {store})).code, 0);
});
