#!/usr/bin/env node
// Crash test: runs `strata import --tag`, `strata gc`, and commit and gc through the library
// (scripts/strata-op.js) on one store and SIGKILLs them at random moments,
// many times; after every kill, `strata verify` must pass and every tag that existed before
// the kill must still name the same image.
//   node scripts/crash-test.js [--iterations N] [--seed S] [--max-delay MS]
// Prints "crash-test: N iterations, K killed, F failures" and exits 1 when F > 0.
import {spawn} from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';
import {generateTree} from './generateTree.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const STRATA = path.join(root, 'node_modules', '.bin', 'strata');
const OP = path.join(root, 'scripts', 'strata-op.js');
const {Store} = await import(path.join(root, 'packages/store/dist/src/index.js'));

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const iterations = opt('--iterations', 100);
let rand = opt('--seed', Date.now() % 1e9) >>> 0;
const maxDelay = opt('--max-delay', 700);
/** mulberry32: a seeded generator, so a failing run can be repeated with --seed. */
const random = () => {
  rand = (rand + 0x6d2b79f5) >>> 0;
  let t = rand;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

function run(cmd, argv, killAfterMs) {
  return new Promise(resolve => {
    const child = spawn(cmd, argv, {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, NO_COLOR: '1'}});
    let stdout = '', stderr = '';
    child.stdout.on('data', d => { stdout += d; });
    child.stderr.on('data', d => { stderr += d; });
    let killed = false;
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => { killed = child.kill('SIGKILL'); }, killAfterMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({code, signal, killed: killed && signal === 'SIGKILL', stdout, stderr});
    });
  });
}

async function tags(dir) {
  const store = await Store.open(dir);
  try {
    return new Map((await store.listTags()).map(t => [t.tag, t.image]));
  } finally {
    await store.close();
  }
}

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-crash-'));
const dir = path.join(tmp, 'store');
let killed = 0, failures = 0;
const fail = (i, what) => { failures++; console.error(`crash-test: iteration ${i}: ${what}`); };
try {
  for (const s of [1, 2]) {
    const r = await run(process.execPath, [OP, dir, 'import', String(s)]);
    if (r.code !== 0) throw new Error(`seeding the store failed: ${r.stderr}`);
  }
  const seedOf = args.includes('--seed') ? `--seed ${opt('--seed')}` : '';
  for (let i = 0; i < iterations; i++) {
    const before = await tags(dir);
    const pick = random();
    const op = pick < 0.45 ? 'import' : pick < 0.75 ? 'commit' : pick < 0.9 ? 'gc' : 'gc-cli';
    const delay = Math.floor(random() * maxDelay);
    const seed = 100 + i;
    let r;
    if (op === 'import') {
      const src = path.join(tmp, `src-${seed}`);
      await generateTree(src, seed);
      r = await run(STRATA, ['import', src, '--tag', `op-${seed}:1`, '--store', dir], delay);
      await fs.rm(src, {recursive: true, force: true});
    } else if (op === 'gc-cli') {
      r = await run(STRATA, ['gc', '--store', dir], delay);
    } else {
      r = await run(process.execPath, [OP, dir, op, String(seed)], delay);
    }
    if (r.killed) killed++;
    else if (r.code !== 0) fail(i, `${op} exited ${r.code}: ${r.stderr.trim()}`);
    const v = await run(STRATA, ['verify', '--store', dir]);
    if (v.code !== 0) fail(i, `verify after ${op} killed at ${delay} ms exited ${v.code}: ${v.stdout.trim()} ${v.stderr.trim()}`);
    const after = await tags(dir);
    for (const [tag, image] of before)
      if (after.get(tag) !== image) fail(i, `tag ${tag} named ${image} before the kill, ${after.get(tag) ?? 'nothing'} after`);
  }
  console.log(`crash-test: ${iterations} iterations, ${killed} killed, ${failures} failures ${seedOf}`.trim());
} finally {
  if (failures === 0) await fs.rm(tmp, {recursive: true, force: true});
  else console.error(`crash-test: the store is kept at ${dir}`);
}
process.exitCode = failures > 0 ? 1 : 0;
