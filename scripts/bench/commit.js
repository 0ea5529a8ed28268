#!/usr/bin/env node
// `strata commit` of a container whose writable layer holds 10,000 new files against
// `podman commit` of a container with the same files (podman's overlay driver, a root of
// its own under the scratch directory), whole processes, in the same run; and the same
// commit again with nothing changed (strata finds the layer it has; podman writes another).
// Each round makes a fresh container on both sides outside the timing: the files go in
// through `strata cp` and through podman's mount with `cp -a`. Medians of --runs (default 5).
// STRATA_BEFORE_BIN=path/to/another/strata adds that build's commits in the same rounds (a
// store of its own), taking turns with this one: the same-run A/B of a change.
//   npm run bench -- commit [--files N] [--runs N]
import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {root, scratch} from './_common.js';
import {ensureTree, generateSmallFiles, treeSize} from './_trees.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const FILES = arg('--files', 10_000);
const RUNS = arg('--runs', 5);
const STRATA = process.env.STRATA_BIN ?? path.join(root, 'node_modules', '.bin', 'strata');
const BEFORE = process.env.STRATA_BEFORE_BIN;

// NODE_EXTRA_CA_CERTS, where the machine sets it, costs every node start ~90 ms: a cost of the machine, not of strata.
const env = {...process.env, NO_COLOR: '1'};
delete env.NODE_EXTRA_CA_CERTS;
function run(cmd, args) {
  const r = spawnSync(cmd, args, {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env});
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}
/** Wall seconds of fn, and CPU seconds of the children it waited for (/proc/self/stat). */
function timed(fn) {
  const c0 = childCpu();
  const t0 = process.hrtime.bigint();
  fn();
  return {wall: Number(process.hrtime.bigint() - t0) / 1e9, cpu: childCpu() - c0};
}
function childCpu() {
  const f = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}

if (spawnSync('podman', ['--version'], {stdio: 'ignore'}).status !== 0) {
  console.error('bench commit: podman is not installed (Debian podman); it is the reference of this benchmark');
  process.exit(1);
}
const base = await scratch('commit');
const src = path.join(base, `files-${FILES}`);
ensureTree(src, dir => generateSmallFiles(dir, FILES));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bench-commit-'));
const podmanRoot = ['--root', path.join(work, 'podman'), '--runroot', path.join(work, 'podman-run'), '--storage-driver', 'overlay'];
process.on('exit', () => {
  spawnSync('podman', [...podmanRoot, 'unmount', '--all'], {stdio: 'ignore'});
  spawnSync('podman', [...podmanRoot, 'system', 'reset', '--force'], {stdio: 'ignore'});
  fs.rmSync(work, {recursive: true, force: true});
});
const podman = (...args) => run('podman', [...podmanRoot, ...args]);
const strata = (...args) => run(STRATA, [...args, '--store', path.join(work, 'store')]);
const before = (...args) => run(BEFORE, [...args, '--store', path.join(work, 'store-before')]);

// One tiny base image on both sides.
const baseDir = path.join(work, 'base');
fs.mkdirSync(baseDir);
fs.writeFileSync(path.join(baseDir, 'hello'), 'hello\n');
strata('init');
strata('import', baseDir, '--tag', 'base:1');
if (BEFORE) {
  before('init');
  before('import', baseDir, '--tag', 'base:1');
}
run('tar', ['-C', baseDir, '-cf', path.join(work, 'base.tar'), '.']);
podman('import', path.join(work, 'base.tar'), 'localhost/base:1');

const rows = {strata: [], podman: [], ...(BEFORE ? {before: []} : {}), 'strata again': [], 'podman again': [], ...(BEFORE ? {'before again': []} : {})};
const commit = {strata: name => strata('commit', name), podman: name => podman('commit', name), before: name => before('commit', name)};
for (let round = 0; round < RUNS; round++) {
  const name = `c${round}`;
  strata('create', 'base:1', '--name', name);
  strata('cp', src, `${name}:/data`);
  if (BEFORE) {
    before('create', 'base:1', '--name', name);
    before('cp', src, `${name}:/data`);
  }
  podman('create', '--name', name, 'localhost/base:1', 'true');
  const mnt = podman('mount', name).trim();
  run('cp', ['-a', src, path.join(mnt, 'data')]);
  podman('unmount', name);
  run('sync', []);
  // Taking turns going first, so neither always meets the other's writeback.
  const turn = BEFORE ? ['strata', 'before', 'podman'] : ['strata', 'podman'];
  const order = round % 2 === 0 ? turn : [...turn].reverse();
  for (const who of order) {
    run('sync', []);
    rows[who].push(timed(() => commit[who](name)));
  }
  for (const who of order) rows[`${who} again`].push(timed(() => commit[who](name)));
}

const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const m = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, {wall: median(v.map(x => x.wall)), cpu: median(v.map(x => x.cpu))}]));
console.log(`commit of ${FILES} new files (${(treeSize(src).bytes / 2 ** 20).toFixed(1)} MiB), medians of ${RUNS} (load average ${os.loadavg().map(x => x.toFixed(2)).join(' ')})`);
console.log('what                     wall s   cpu s');
for (const [k, v] of Object.entries(m)) console.log(`${k.padEnd(22)} ${v.wall.toFixed(3).padStart(8)} ${v.cpu.toFixed(2).padStart(7)}`);
console.log(`strata / podman: wall ${(m.strata.wall / m.podman.wall).toFixed(2)}, cpu ${(m.strata.cpu / m.podman.cpu).toFixed(2)}`);
console.log(`again, strata / podman: wall ${(m['strata again'].wall / m['podman again'].wall).toFixed(2)}, cpu ${(m['strata again'].cpu / m['podman again'].cpu).toFixed(2)}`);
if (BEFORE) {
  console.log(`before / podman: wall ${(m.before.wall / m.podman.wall).toFixed(2)}, cpu ${(m.before.cpu / m.podman.cpu).toFixed(2)}`);
  console.log(`this build / before: wall ${(m.strata.wall / m.before.wall).toFixed(2)}, cpu ${(m.strata.cpu / m.before.cpu).toFixed(2)}; again: wall ${(m['strata again'].wall / m['before again'].wall).toFixed(2)}, cpu ${(m['strata again'].cpu / m['before again'].cpu).toFixed(2)}`);
}
