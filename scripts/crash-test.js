#!/usr/bin/env node
// Crash test: runs real `strata` commands on one store (import --tag; create, fs write, commit, rm;
// gc; and all three at once, as separate processes) and SIGKILLs them at random moments (seeded),
// many times; after every kill, `strata verify`
// must pass, every tag that existed before the kill must still name the same image, and a known
// file of the first image must read back unchanged through `strata cat` (every tenth iteration
// and after the last; verify re-hashes every object after each one).
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

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const iterations = opt('--iterations', 100);
const seed0 = opt('--seed', Date.now() % 1e9) >>> 0;
let rand = seed0;
const maxDelay = opt('--max-delay', 2500);
/** mulberry32: a seeded generator, so a failing run can be repeated with --seed. */
const random = () => {
  rand = (rand + 0x6d2b79f5) >>> 0;
  let t = rand;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

/** Runs `strata ARGS --store DIR`; with killAt, SIGKILLs it that many ms after it started. */
function strata(dir, argv, {killAt, input} = {}) {
  return new Promise(resolve => {
    const child = spawn(STRATA, [...argv, '--store', dir], {stdio: ['pipe', 'pipe', 'pipe'], env: {...process.env, NO_COLOR: '1'}});
    let stdout = '', stderr = '';
    child.stdout.on('data', d => { stdout += d; });
    child.stderr.on('data', d => { stderr += d; });
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
    let killed = false;
    const timer = killAt === undefined ? undefined : setTimeout(() => { killed = child.kill('SIGKILL'); }, killAt);
    const started = Date.now();
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({code, signal, killed: killed && signal === 'SIGKILL', ms: Date.now() - started, stdout, stderr, argv});
    });
  });
}

/** Runs the steps one after another; the kill lands `delay` ms into the whole sequence (none when undefined). */
async function sequence(dir, steps, delay) {
  let left = delay, r;
  for (const [argv, input] of steps) {
    r = await strata(dir, argv, {killAt: left, input});
    if (r.killed || r.code !== 0) return r;
    if (left !== undefined) left = Math.max(0, left - r.ms);
  }
  return r;
}

async function tags(dir) {
  const r = await strata(dir, ['images', '--json']);
  if (r.code !== 0) throw new Error(`strata images failed: ${r.stderr}`);
  return new Map(JSON.parse(r.stdout).flatMap(i => i.tags.map(t => [t, i.id])));
}

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-crash-'));
const dir = path.join(tmp, 'store');
let killed = 0, failures = 0;
const fail = (i, what) => { failures++; console.error(`crash-test: iteration ${i}: ${what}`); };
const KNOWN = ['/own/f2', 'seed 1 file 2\n'.repeat(12)];
try {
  if ((await strata(dir, ['init'])).code !== 0) throw new Error('strata init failed');
  for (const s of [1, 2]) {
    const src = path.join(tmp, `src-${s}`);
    await generateTree(src, s);
    const r = await strata(dir, ['import', src, '--tag', `op-${s}:1`]);
    if (r.code !== 0) throw new Error(`seeding the store failed: ${r.stderr}`);
  }
  let before = await tags(dir);
  for (let i = 0; i < iterations; i++) {
    const pick = random();
    const op = pick < 0.3 ? 'import' : pick < 0.6 ? 'commit' : pick < 0.75 ? 'gc' : 'together';
    const delay = Math.floor(random() * maxDelay);
    const seed = 100 + i;
    const importing = async killAt => {
      const src = path.join(tmp, `src-${seed}`);
      await generateTree(src, seed);
      const r = await strata(dir, ['import', src, '--tag', `op-${seed}:1`], {killAt});
      await fs.rm(src, {recursive: true, force: true});
      return r;
    };
    const committing = killAt => {
      const names = [...before.keys()];
      const base = names[Math.floor(random() * names.length)];
      const c = `c${seed}`;
      return sequence(dir, [
        [['create', base, '--name', c]],
        [['fs', 'write', c, `/changed-${seed}`], `commit ${seed}\n`.repeat(50)],
        [['fs', 'write', c, `/big-${seed}`], Buffer.alloc(100_000, seed % 13)],
        [['commit', c, '--tag', `commit-${seed}:1`]],
        [['rm', c]],
      ], killAt);
    };
    const collecting = killAt => strata(dir, ['gc'], {killAt});
    let results;
    if (op === 'import') results = [await importing(delay)];
    else if (op === 'commit') results = [await committing(delay)];
    else if (op === 'gc') results = [await collecting(delay)];
    // Three processes at once, one of them (chosen by the seed) killed, the others left to finish.
    else {
      const victim = Math.floor(random() * 3);
      const at = k => (k === victim ? delay : undefined);
      results = await Promise.all([importing(at(0)), committing(at(1)), collecting(at(2))]);
    }
    if (results.some(r => r.killed)) killed++;
    for (const r of results) if (!r.killed && r.code !== 0) fail(i, `${op} (${r.argv.join(' ')}) exited ${r.code}: ${r.stderr.trim()}`);
    const r = results.find(x => x.killed) ?? results[0];
    const v = await strata(dir, ['verify']);
    if (v.code !== 0) fail(i, `verify after ${op} killed at ${delay} ms (${r.argv.join(' ')}) exited ${v.code}: ${v.stdout.trim()} ${v.stderr.trim()}`);
    const after = await tags(dir);
    for (const [tag, image] of before)
      if (after.get(tag) !== image) fail(i, `tag ${tag} named ${image} before the kill, ${after.get(tag) ?? 'nothing'} after`);
    before = after;
    if (i % 10 !== 9 && i !== iterations - 1) continue;
    const known = await strata(dir, ['cat', 'op-1:1', KNOWN[0]]);
    if (known.code !== 0 || known.stdout !== KNOWN[1]) fail(i, `cat op-1:1 ${KNOWN[0]} read back wrong (exit ${known.code}) ${known.stderr.trim()}`);
  }
  console.log(`crash-test: ${iterations} iterations, ${killed} killed, ${failures} failures --seed ${seed0}`);
} finally {
  if (failures === 0) await fs.rm(tmp, {recursive: true, force: true});
  else console.error(`crash-test: the store is kept at ${dir}`);
}
process.exitCode = failures > 0 ? 1 : 0;
