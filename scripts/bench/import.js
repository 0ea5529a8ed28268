#!/usr/bin/env node
// Import throughput of strata against two references measured in the same run:
//   - `tar -cf - DIR | b3sum`: reading every byte and hashing it, the limit for any importer;
//   - `ostree commit` into a fresh bare repo (when ostree is installed): a peer that also
//     writes a content-addressed copy with fsync;
//   - `cp -a DIR` into a fresh directory, then `sync`: copying the bytes and making them
//     durable, with no hashing and no index, the floor for any store that writes them durably.
// Inputs, generated once under .bench/import/: "rootfs" (about a debootstrap minbase: 5,000
// files, ~120 MB, scripts/bench/_trees.js), "small10k" (10,000 files of 64 B–8 KiB), "tree"
// (20,000 files, ~300 MB: many small files and a few large) and "file" (one 1 GiB file).
// All inputs are in the page cache (read just before), so the figures compare CPU and write
// paths, not a cold disk. Each run times the library's import (in this process) and the
// CLI's (`strata import DIR` into a fresh store: a whole process, as users run it; wall and
// CPU seconds), and prints the library's CPU seconds (all threads, and the main thread alone)
// and the layer id, which must not change between builds. The library's imports run in a
// process per build (_importRunner.js), started once, so one build's process-wide settings
// (V8's flags) never reach the other's runs. Stores and repos are deleted only
// between trees, never just before a timed step (see `discard`). With --compare DIR, also runs the
// store package and CLI built in another checkout DIR (e.g. an older commit) in the same
// loop, for a before/after figure under the same load.
// Usage: npm run bench -- import [rootfs|small10k|tree|file ...] [--runs N] [--compare DIR]
import {spawn, spawnSync} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import * as fs_ from 'node:fs';
import * as fs from 'node:fs/promises';
import {loadavg} from 'node:os';
import * as path from 'node:path';
import {createInterface} from 'node:readline';
import {fmtBytes, prng, root, scratch, store as S, time} from './_common.js';
import {ensureTree, generateRootfs, generateSmallFiles} from './_trees.js';

const argv = process.argv.slice(2);
const runsAt = argv.indexOf('--runs');
const RUNS = runsAt >= 0 ? Number(argv.splice(runsAt, 2)[1]) : 3;
const compareAt = argv.indexOf('--compare');
const compareDir = compareAt >= 0 ? argv.splice(compareAt, 2)[1] : undefined;
const only = argv.length > 0 ? argv : ['rootfs', 'small10k', 'tree', 'file'];
const storeIndex = dir => path.join(dir, 'packages', 'store', 'dist', 'src', 'index.js');
const cliOf = dir => path.join(dir, 'packages', 'cli', 'bin', 'strata.js');
const cli = cliOf(root), otherCli = compareDir && cliOf(path.resolve(compareDir));

const base = await scratch('import');
const has = prog => spawnSync('sh', ['-c', `command -v ${prog}`]).status === 0;
if (!has('b3sum')) {
  console.error('bench: b3sum is not installed (npm run setup installs it as root)');
  process.exit(1);
}
const haveOstree = has('ostree');

// Stores, repos and copies are not deleted between timed steps but moved aside, and deleted
// once every tree is done (or when over 4 GiB wait), at least QUIET_MS before the next
// timed step. This machine's ext4 has no journal, and there ext4 will not reuse an inode
// freed in the last 60 s (300 s more while its inode table block is dirty: RECENTCY_MIN and
// RECENTCY_DIRTY of the "recently_deleted" check of its inode allocator, fs/ext4/ialloc.c):
// every file created in the same block group soon after a store of 5,000 files was deleted
// scanned past all of them, ~0.7 ms of CPU per create here (perf: __ext4_new_inode ->
// recently_deleted), which strata, ostree and cp paid for the bench's own clean-up, and tar,
// which creates nothing, did not. The bench syncs before each step, so inode tables are clean.
const QUIET_MS = 61_000;
const removed = path.join(base, 'removed');
const removedAt = path.join(base, 'removed.at');
let removals = 0, removedSince = 0;
/** Moves a store or repo out of the way (a rename frees no inode). */
function discard(dir) {
  if (!fs_.existsSync(dir)) return;
  fs_.mkdirSync(removed, {recursive: true});
  fs_.renameSync(dir, path.join(removed, `${process.pid}-${removals++}`));
  removedSince++;
}
/** Deletes what `discard` moved aside, and notes when. */
function emptyRemoved() {
  if (!fs_.existsSync(removed)) return;
  fs_.rmSync(removed, {recursive: true, force: true});
  fs_.writeFileSync(removedAt, '');
  removedSince = 0;
}
/** Waits until QUIET_MS have passed since the last deletion (this run's or an earlier one's). */
async function awaitQuietInodes() {
  const at = fs_.existsSync(removedAt) ? fs_.statSync(removedAt).mtimeMs : 0;
  const wait = at + QUIET_MS - Date.now();
  if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait));
}

async function generate(name, make) {
  const dir = path.join(base, name);
  if (name === 'rootfs') return ensureTree(dir, generateRootfs);
  if (name === 'small10k') return ensureTree(dir, d => generateSmallFiles(d, 10_000));
  const done = path.join(base, `${name}.done`);
  if (await fs.stat(done).then(() => true, () => false)) return dir;
  await fs.rm(dir, {recursive: true, force: true});
  await fs.mkdir(dir, {recursive: true});
  await make(dir);
  await fs.writeFile(done, '');
  return dir;
}

// 19,970 small files, log-uniform 64 B … 64 KiB, in 200 directories of 2 levels;
// 30 large files of 4 MiB. About 300 MB, all distinct content.
const makeTree = async dir => {
  const rand = prng(42);
  for (let i = 0; i < 19_970; i++) {
    const sub = path.join(dir, `d${i % 20}`, `e${i % 200}`);
    if (i < 200) await fs.mkdir(sub, {recursive: true});
    const size = Math.floor(64 * 1024 ** rand());
    await fs.writeFile(path.join(sub, `f${i}.dat`), randomBytes(size));
  }
  await fs.mkdir(path.join(dir, 'large'));
  for (let i = 0; i < 30; i++) await fs.writeFile(path.join(dir, 'large', `l${i}.bin`), randomBytes(4 * 1024 * 1024));
};
const makeFile = async dir => {
  const fh = await fs.open(path.join(dir, 'big.bin'), 'w');
  const chunk = randomBytes(64 * 1024 * 1024);
  for (let i = 0; i < 16; i++) { chunk.writeUInt32BE(i, 0); await fh.write(chunk); } // distinct chunks
  await fh.close();
};

async function du(dir) {
  let bytes = 0, files = 0;
  for (const e of await fs.readdir(dir, {withFileTypes: true, recursive: true}))
    if (e.isFile()) { files++; bytes += (await fs.stat(path.join(e.parentPath ?? e.path, e.name))).size; }
  return {bytes, files};
}

function sh(cmd) {
  const r = spawnSync('sh', ['-c', cmd], {stdio: ['ignore', 'ignore', 'inherit']});
  if (r.status !== 0) throw new Error(`bench: "${cmd}" failed (exit ${r.status})`);
}

/** A build's library imports in a process of its own (_importRunner.js), which stays up for the whole bench. */
function startRunner(buildDir) {
  const child = spawn(process.execPath, [path.join(root, 'scripts', 'bench', '_importRunner.js'), storeIndex(buildDir)], {stdio: ['pipe', 'pipe', 'inherit']});
  const lines = createInterface({input: child.stdout})[Symbol.asyncIterator]();
  const next = async () => {
    const {value, done} = await lines.next();
    if (done) throw new Error(`bench: the import runner of ${buildDir} ended early`);
    return JSON.parse(value);
  };
  const ready = next();
  return {
    async run(job) {
      await ready;
      child.stdin.write(`${JSON.stringify(job)}\n`);
      return next();
    },
    close: () => child.stdin.end(),
  };
}

async function strataImport(dir, runner) {
  const storeDir = path.join(base, 'store');
  discard(storeDir);
  const first = await runner.run({dir, storeDir, create: true});
  const again = await runner.run({dir, storeDir, create: false});
  if (again.layer !== first.layer || again.newBytes !== 0) throw new Error('bench: the second import was not a no-op');
  discard(storeDir);
  return {seconds: first.seconds, again: again.seconds, cpu: first.cpu, mainCpu: first.mainCpu, layer: first.layer};
}

/** `strata import DIR` into a fresh store, as a whole process: wall and CPU seconds (the child's user + system). */
function cliImport(dir, bin) {
  const storeDir = path.join(base, 'cli-store');
  discard(storeDir);
  const env = {...process.env, NO_COLOR: '1'};
  delete env.STRATA_STORE;
  delete env.NODE_EXTRA_CA_CERTS; // a cost of the machine where it is set, not of strata (see gcprune.js)
  const init = spawnSync(process.execPath, [bin, 'init', '--store', storeDir], {env, stdio: 'ignore'});
  if (init.status !== 0) throw new Error('bench: strata init failed');
  sh('sync');
  const start = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', process.execPath, bin, 'import', dir, '--store', storeDir], {env, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe']});
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`bench: strata import ${dir} failed: ${r.stderr}`);
  const [user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  discard(storeDir);
  return {seconds, cpu: user + sys};
}

/**
 * The tree ostree commits: `dir` itself, or where it holds device nodes or fifos (the rootfs
 * tree as root), which ostree refuses ("Not a regular file or symlink"), a copy without them
 * (made once beside it).
 */
function ostreeTree(dir) {
  const special = spawnSync('find', [dir, '(', '-type', 'c', '-o', '-type', 'b', '-o', '-type', 'p', ')', '-print', '-quit'], {encoding: 'utf8'}).stdout.trim();
  if (special === '') return dir;
  const copy = `${dir}.ostree`;
  if (!fs_.existsSync(`${copy}.done`)) {
    fs_.rmSync(copy, {recursive: true, force: true});
    sh(`cp -a '${dir}' '${copy}' && find '${copy}' \\( -type c -o -type b -o -type p \\) -delete && touch '${copy}.done'`);
  }
  return copy;
}

/** `cp -a` of the tree into a fresh directory and a `sync` (the copy's bytes on disk): the cost of writing a durable copy at all. */
async function copyTree(dir) {
  const dest = path.join(base, 'copy');
  discard(dest);
  const t = await time(() => sh(`cp -a '${dir}' '${dest}' && sync`));
  discard(dest);
  return t;
}

async function ostreeCommit(dir) {
  const repo = path.join(base, 'ostree');
  discard(repo);
  sh(`ostree --repo='${repo}' init --mode=bare`);
  const tree = ostreeTree(dir);
  const t = await time(() => sh(`ostree --repo='${repo}' commit --branch=bench --tree=dir='${tree}' >/dev/null`));
  discard(repo);
  return t;
}

const median = xs => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const rate = (bytes, s) => `${(bytes / s / 1e6).toFixed(0).padStart(5)} MB/s`;

console.log(`load average at start: ${loadavg().map(l => l.toFixed(1)).join(' ')} (2 cores here: above ~2, other work shares the CPU)`);
console.log(`strata import vs references, ${S.hashBackend()} BLAKE3, median of ${RUNS} runs (node ${process.version})`);
const mine = startRunner(root), other = compareDir && startRunner(path.resolve(compareDir));
emptyRemoved(); // what an interrupted run left; the first timed step waits QUIET_MS from here
for (const name of only) {
  const dir = await generate(name, name === 'tree' ? makeTree : makeFile);
  const {bytes, files} = await du(dir);
  sh(`tar -cf - -C '${dir}' . >/dev/null`); // into the page cache
  await awaitQuietInodes();
  const ref = [], st = [], again = [], os = [], cp = [], cmp = [], cmpAgain = [], proc = [], cmpProc = [];
  const cpus = new Map([[mine, []], ...(other ? [[other, []]] : [])]);
  const layers = new Map();
  for (let i = 0; i < RUNS; i++) {
    // Each timed step starts with no dirty pages (sync), so no step pays for another's
    // writeback; with --compare the two builds take turns going first.
    sh('sync');
    ref.push((await time(() => sh(`tar -cf - -C '${dir}' . | b3sum >/dev/null`))).seconds);
    const builds = [[mine, st, again], ...(other ? [[other, cmp, cmpAgain]] : [])];
    if (i % 2 === 1) builds.reverse();
    for (const [build, first, second] of builds) {
      sh('sync');
      const s = await strataImport(dir, build);
      first.push(s.seconds); second.push(s.again);
      cpus.get(build).push(s);
      layers.set(build, s.layer);
    }
    const clis = [[cli, proc], ...(otherCli ? [[otherCli, cmpProc]] : [])];
    if (i % 2 === 1) clis.reverse();
    for (const [bin, out] of clis) out.push(cliImport(dir, bin));
    sh('sync');
    if (haveOstree) os.push((await ostreeCommit(dir)).seconds);
    sh('sync');
    cp.push((await copyTree(dir)).seconds);
    if (removedSince * bytes > 4 * 1024 ** 3) { // the 1 GiB file: ~7 GiB set aside per run
      emptyRemoved();
      await awaitQuietInodes();
    }
  }
  const [r, s, a] = [median(ref), median(st), median(again)];
  console.log(`\n${name}: ${files} files, ${fmtBytes(bytes)}`);
  console.log(`  tar | b3sum          ${r.toFixed(2).padStart(6)} s ${rate(bytes, r)}`);
  const cpuOf = build => `CPU ${median(cpus.get(build).map(x => x.cpu)).toFixed(2)} s, main thread ${median(cpus.get(build).map(x => x.mainCpu)).toFixed(2)} s`;
  console.log(`  strata import        ${s.toFixed(2).padStart(6)} s ${rate(bytes, s)}   ratio to tar|b3sum ${(s / r).toFixed(2)}x the time; ${cpuOf(mine)}; layer ${layers.get(mine)}`);
  console.log(`  strata import again  ${a.toFixed(2).padStart(6)} s ${rate(bytes, a)}   (nothing new stored)`);
  if (other) {
    const [c, ca] = [median(cmp), median(cmpAgain)];
    console.log(`  --compare import      ${c.toFixed(2).padStart(6)} s ${rate(bytes, c)}   ratio to tar|b3sum ${(c / r).toFixed(2)}x; this build is ${(c / s).toFixed(2)}x as fast; ${cpuOf(other)}; layer ${layers.get(other)}${layers.get(other) === layers.get(mine) ? ' (the same)' : ' (DIFFERENT)'}`);
    console.log(`  --compare again       ${ca.toFixed(2).padStart(6)} s ${rate(bytes, ca)}   this build is ${(ca / a).toFixed(2)}x as fast`);
  }
  const [pw, pc] = [median(proc.map(x => x.seconds)), median(proc.map(x => x.cpu))];
  const o = haveOstree ? median(os) : undefined;
  console.log(`  strata import (CLI)  ${pw.toFixed(2).padStart(6)} s ${rate(bytes, pw)}   ratio to tar|b3sum ${(pw / r).toFixed(2)}x${o ? `, to ostree ${(pw / o).toFixed(2)}x` : ''}; CPU ${pc.toFixed(2)} s`);
  if (otherCli) {
    const [cw, cc] = [median(cmpProc.map(x => x.seconds)), median(cmpProc.map(x => x.cpu))];
    console.log(`  --compare CLI        ${cw.toFixed(2).padStart(6)} s ${rate(bytes, cw)}   ratio to tar|b3sum ${(cw / r).toFixed(2)}x; CPU ${cc.toFixed(2)} s; this build takes ${(pw / cw).toFixed(2)}x the time, ${(pc / cc).toFixed(2)}x the CPU`);
  }
  if (o !== undefined) console.log(`  ostree commit (bare) ${o.toFixed(2).padStart(6)} s ${rate(bytes, o)}   strata/ostree ${(s / o).toFixed(2)}x the time`);
  else console.log('  ostree commit        not installed: skipped');
  const c = median(cp);
  console.log(`  cp -a + sync         ${c.toFixed(2).padStart(6)} s ${rate(bytes, c)}   strata/cp ${(s / c).toFixed(2)}x the time (library), ${(pw / c).toFixed(2)}x (CLI); tar|b3sum/cp ${(r / c).toFixed(2)}x`);
}
mine.close();
if (other) other.close();
emptyRemoved(); // after the last timed step; the next run waits QUIET_MS from here
console.log(`load average at end: ${loadavg().map(l => l.toFixed(1)).join(' ')}`);
