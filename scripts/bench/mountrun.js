#!/usr/bin/env node
// Starting containers, as ratios measured in this run (the first mount of an image, which
// builds its metadata image, is `npm run bench -- mount`):
//   later mounts: `strata mount` + `strata umount` of a container of a 100,000-file image
//     against one of a 10-file image (the metadata image already built): goal <= 1.2, flat;
//   run: `strata run --rm IMAGE true` against `runc run` of an unpacked bundle of the same
//     busybox image (the floor: the runtime alone).
//     `node -e 0` in the same rounds: what is left of strata's own cost, after runc and Node's start.
//   npm run bench -- mountrun [--runs N]       (root, runc, busybox-static)
//   STRATA_BIN=path/to/another/strata times another build the same way.
import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {root} from './_common.js';

const argv = process.argv.slice(2);
const runsAt = argv.indexOf('--runs');
const RUNS = runsAt >= 0 ? Number(argv[runsAt + 1]) : 7;
const BIG = Number(process.env.BENCH_BIG_FILES ?? 100_000);
const STRATA = process.env.STRATA_BIN ?? path.join(root, 'node_modules', '.bin', 'strata');
for (const p of ['runc', 'busybox']) {
  if (spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0) {
    console.error(`bench: ${p} is not installed (npm run setup installs it as root)`);
    process.exit(1);
  }
}
if (process.getuid?.() !== 0) {
  console.error('bench: mounting and running containers needs root');
  process.exit(1);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bench-mountrun-'));
const store = path.join(work, 'store');
const env = {...process.env, STRATA_STORE: store, NO_COLOR: '1'};
process.on('exit', () => {
  for (const c of ['big', 'small']) spawnSync(STRATA, ['umount', c], {env});
  fs.rmSync(work, {recursive: true, force: true});
});

function strata(...args) {
  const r = spawnSync(STRATA, args, {env, encoding: 'utf8', maxBuffer: 64 << 20});
  if (r.status !== 0) throw new Error(`strata ${args.join(' ')}: ${r.error?.message ?? (r.signal ? `killed by ${r.signal}` : `exit ${r.status}`)}: ${r.stderr}`);
  return r.stdout;
}

/**
 * CPU seconds of finished children so far (cutime + cstime of /proc/self/stat, 10 ms
 * ticks): what a command and its children (runc, perl) used, which a busy machine's
 * scheduling and disk do not inflate as they do wall time.
 */
function childCpu() {
  const f = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}

/** Wall seconds of one command; its CPU seconds are added to `cpu[label]` when a label is given. */
const cpu = {};
function seconds(cmd, args, label) {
  const c0 = childCpu();
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, args, {env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8'});
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  if (label) cpu[label] = (cpu[label] ?? 0) + childCpu() - c0;
  return wall;
}

const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A busybox root: the static binary and its applets as symlinks. */
function busyboxRoot(dir) {
  fs.mkdirSync(path.join(dir, 'bin'), {recursive: true});
  const busybox = spawnSync('sh', ['-c', 'command -v busybox'], {encoding: 'utf8'}).stdout.trim();
  fs.copyFileSync(fs.realpathSync(busybox), path.join(dir, 'bin', 'busybox'));
  fs.chmodSync(path.join(dir, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'true', 'ls']) fs.symlinkSync('busybox', path.join(dir, 'bin', a));
  for (const d of ['dev', 'proc', 'sys', 'etc']) fs.mkdirSync(path.join(dir, d));
  return dir;
}

strata('init');
const small = busyboxRoot(path.join(work, 'small'));
for (let i = 0; i < 10 - 1; i++) fs.writeFileSync(path.join(small, 'etc', `f${i}`), `file ${i}\n`);
strata('import', small, '--tag', 'small:1');
const big = path.join(work, 'big');
for (let i = 0; i < BIG; i++) {
  const dir = path.join(big, `d${Math.floor(i / 100)}`);
  if (i % 100 === 0) fs.mkdirSync(dir, {recursive: true});
  fs.writeFileSync(path.join(dir, `f${i % 100}`), `file ${i}\n`);
}
strata('import', big, '--tag', 'big:1');
strata('create', 'big:1', '--name', 'big');
strata('create', 'small:1', '--name', 'small');
// The first mounts build the metadata images; the rest only mount.
const firstBig = seconds(STRATA, ['mount', 'big']);
strata('umount', 'big');
strata('mount', 'small');
strata('umount', 'small');

const mountBig = [], mountSmall = [];
for (let r = 0; r < RUNS; r++) {
  mountBig.push(seconds(STRATA, ['mount', 'big']) + seconds(STRATA, ['umount', 'big']));
  mountSmall.push(seconds(STRATA, ['mount', 'small']) + seconds(STRATA, ['umount', 'small']));
}

// The floor: runc run of the same image unpacked into a plain bundle (config from runc spec).
const bundle = path.join(work, 'bundle');
fs.mkdirSync(bundle);
strata('checkout', 'small:1', path.join(bundle, 'rootfs'));
spawnSync('runc', ['spec', '--bundle', bundle]);
const config = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
config.process.terminal = false;
config.process.args = ['true'];
fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(config));
seconds(STRATA, ['run', '--rm', 'small:1', '--', 'true']); // warm-up
const run = [], runc = [], node = [];
for (let r = 0; r < RUNS; r++) {
  run.push(seconds(STRATA, ['run', '--rm', 'small:1', '--', 'true'], 'run'));
  runc.push(seconds('runc', ['run', '--bundle', bundle, `strata-bench-${process.pid}-${r}`], 'runc'));
  node.push(seconds(process.execPath, ['-e', '0'], 'node'));
}

console.log(`load average ${os.loadavg().map(l => l.toFixed(1)).join(' ')}; ${RUNS} runs each, medians in seconds`);
console.log(`first mount of the ${BIG}-file image (builds its metadata image): ${firstBig.toFixed(2)}`);
console.log('| what | strata | reference | ratio |');
console.log('|---|---|---|---|');
console.log(`| later mount + umount, ${BIG}-file image vs 10-file image | ${median(mountBig).toFixed(3)} | ${median(mountSmall).toFixed(3)} | ${(median(mountBig) / median(mountSmall)).toFixed(2)} |`);
console.log(`| strata run --rm IMAGE true vs runc run of an unpacked bundle | ${median(run).toFixed(3)} | ${median(runc).toFixed(3)} | ${(median(run) / median(runc)).toFixed(2)} |`);
const own = median(run) - median(runc);
console.log(`| strata's own part of run --rm (run - runc) vs node -e 0 | ${own.toFixed(3)} | ${median(node).toFixed(3)} | ${(own / median(node)).toFixed(2)} |`);
const perRun = label => cpu[label] / RUNS;
console.log(`| CPU seconds, run --rm (strata, perl, runc) vs runc run | ${perRun('run').toFixed(3)} | ${perRun('runc').toFixed(3)} | ${(perRun('run') / perRun('runc')).toFixed(2)} |`);
console.log(`| CPU seconds, strata's own part of run --rm vs node -e 0 | ${(perRun('run') - perRun('runc')).toFixed(3)} | ${perRun('node').toFixed(3)} | ${((perRun('run') - perRun('runc')) / perRun('node')).toFixed(2)} |`);
