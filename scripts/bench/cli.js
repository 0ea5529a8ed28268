#!/usr/bin/env node
// The fixed cost of a strata command: whole-process wall time of `strata --help`, `ps` (and `--store DIR ps`),
// `images`, `init`, `create`, `diff` (10 changes) and `commit` (1 change) (the installed
// binary, node_modules/.bin/strata), each as a ratio against `node -e 0` measured in the
// same run, `strata init` against `ostree init` where ostree is installed, and create,
// diff and commit against podman's where podman is installed. Rounds take every command in turn, so the
// machine's noise falls on all alike; medians. `npm run bench -- cli [ROUNDS]`.
// STRATA_BEFORE_BIN=path/to/another/strata adds its figures in the same rounds (a
// before/after comparison of two builds; each uses its own store, made by itself).
import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {root} from './_common.js';

const STRATA = process.env.STRATA_BIN ?? path.join(root, 'node_modules', '.bin', 'strata');
const BEFORE = process.env.STRATA_BEFORE_BIN;
const ROUNDS = Number(process.argv[2] ?? 31);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bench-cli-'));
process.on('exit', () => fs.rmSync(work, {recursive: true, force: true}));
const env = {...process.env, NO_COLOR: '1'};
delete env.STRATA_STORE;

function run(cmd, args, input) {
  const r = spawnSync(cmd, args, {env, stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'], input, encoding: 'utf8'});
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
}

// A store with one image and one container, so ps and images have something to list.
const src = path.join(work, 'src');
fs.mkdirSync(src);
fs.writeFileSync(path.join(src, 'hello'), 'hello\n');
function makeStore(bin, name) {
  const store = path.join(work, name);
  run(bin, ['init', '--store', store]);
  run(bin, ['import', src, '--tag', 'base:1', '--store', store]);
  run(bin, ['create', 'base:1', '--name', 'web', '--store', store]);
  // diff's container: 10 changed files.
  run(bin, ['create', 'base:1', '--name', 'changed', '--store', store]);
  for (let i = 0; i < 10; i++) run(bin, ['fs', 'changed', 'write', `/f${i}`, '--store', store], `change ${i}\n`);
  return store;
}

/** A fresh container with one changed file, for one commit (made outside the timing). */
let commits = 0;
function containerToCommit(bin, store) {
  const name = `commit${commits++}`;
  run(bin, ['create', 'base:1', '--name', name, '--store', store]);
  run(bin, ['fs', name, 'write', '/changed', '--store', store], `${name}\n`);
  return name;
}

const hasOstree = spawnSync('ostree', ['--version'], {stdio: 'ignore'}).status === 0;
const hasPodman = spawnSync('podman', ['--version'], {stdio: 'ignore'}).status === 0;
let fresh = 0;
const next = label => path.join(work, `${label}-${fresh++}`);

/** The strata cases for one binary; `suffix` labels a second build's rows. */
function strataCases(bin, suffix) {
  const store = makeStore(bin, `store${suffix.replace(/\W/g, '')}`);
  return [
    [`strata --help${suffix}`, () => () => run(bin, ['--help'])],
    [`strata ps${suffix}`, () => () => run(bin, ['ps', '--store', store])],
    // Options before the command: the command line must not register every command for it.
    [`strata --store D ps${suffix}`, () => () => run(bin, ['--store', store, 'ps'])],
    [`strata images${suffix}`, () => () => run(bin, ['images', '--store', store])],
    [`strata init${suffix}`, () => { const d = next('init'); return () => run(bin, ['init', '--store', d]); }],
    [`strata create${suffix}`, () => () => run(bin, ['create', 'base:1', '--store', store])],
    [`strata diff${suffix}`, () => () => run(bin, ['diff', 'changed', '--store', store])],
    [`strata commit${suffix}`, () => { const c = containerToCommit(bin, store); return () => run(bin, ['commit', c, '--store', store]); }],
  ];
}

/**
 * podman's create, diff (10 changes) and commit (1 change) of a one-file image, in a root
 * of its own under the scratch directory (vfs driver: no setup outside it).
 */
function podmanCases() {
  const podman = (...args) => run('podman', ['--root', path.join(work, 'podman'), '--runroot', path.join(work, 'podman-run'), '--storage-driver', 'vfs', ...args]);
  const tar = path.join(work, 'base.tar');
  spawnSync('tar', ['-C', src, '-cf', tar, '.']);
  podman('import', tar, 'localhost/base:1');
  const withChanges = (name, n) => {
    podman('create', '--name', name, 'localhost/base:1', 'true');
    const mnt = spawnSync('podman', ['--root', path.join(work, 'podman'), '--runroot', path.join(work, 'podman-run'), '--storage-driver', 'vfs', 'mount', name], {encoding: 'utf8'}).stdout.trim();
    for (let i = 0; i < n; i++) fs.writeFileSync(path.join(mnt, `f${i}`), `change ${i}\n`);
    return name;
  };
  withChanges('changed', 10);
  let k = 0;
  return [
    ['podman create', () => () => podman('create', 'localhost/base:1', 'true')],
    ['podman diff', () => () => podman('diff', 'changed')],
    ['podman commit', () => { const c = withChanges(`commit${k++}`, 1); return () => podman('commit', c); }],
  ];
}

/** Each case: a label and a function that prepares one run (fresh directories made outside the timing) and returns it. */
const cases = [
  ['node -e 0', () => () => run(process.execPath, ['-e', '0'])],
  ...strataCases(STRATA, ''),
  ...(BEFORE ? strataCases(BEFORE, ' (before)') : []),
  ...(hasPodman ? podmanCases() : []),
  ...(hasOstree ? [['ostree init', () => { const d = next('ostree'); return () => run('ostree', ['init', `--repo=${d}`, '--mode=bare']); }]] : []),
];

/**
 * CPU milliseconds of finished children so far (cutime + cstime of /proc/self/stat, 10 ms
 * ticks): per run too coarse, averaged over the rounds a second view that a busy machine's
 * scheduling does not inflate. Undefined off Linux.
 */
function childCpuMs() {
  try {
    const f = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    return (Number(f[13]) + Number(f[14])) * 10;
  } catch {
    return undefined;
  }
}
const cpu = new Map(cases.map(([label]) => [label, 0]));
const times = new Map(cases.map(([label]) => [label, []]));
for (let round = -1; round < ROUNDS; round++) { // round -1 warms the page cache
  for (const [label, prepare] of cases) {
    const fn = prepare();
    const c0 = childCpuMs();
    const t0 = process.hrtime.bigint();
    fn();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (round >= 0) {
      times.get(label).push(ms);
      if (c0 !== undefined) cpu.set(label, cpu.get(label) + childCpuMs() - c0);
    }
  }
}
const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const m = new Map([...times].map(([label, xs]) => [label, median(xs)]));
const node = m.get('node -e 0');
console.log(`strata CLI fixed cost, ${ROUNDS} rounds, medians (load average ${os.loadavg().map(x => x.toFixed(2)).join(' ')})`);
console.log(`binary: ${path.relative(root, STRATA)}${BEFORE ? `; before: ${BEFORE}` : ''}`);
const cpuOf = label => cpu.get(label) / ROUNDS;
console.log(`${'command'.padEnd(26)} ${'wall ms'.padStart(8)}  ratio to node -e 0   ${'cpu ms'.padStart(7)}  cpu ratio`);
for (const [label, ms] of m) console.log(`${label.padEnd(26)} ${ms.toFixed(1).padStart(8)}  ${(ms / node).toFixed(2).padStart(18)}   ${cpuOf(label).toFixed(0).padStart(7)}  ${(cpuOf(label) / cpuOf('node -e 0')).toFixed(2)}`);
if (hasOstree) {
  console.log(`strata init / ostree init: wall ${(m.get('strata init') / m.get('ostree init')).toFixed(2)}, cpu ${(cpuOf('strata init') / cpuOf('ostree init')).toFixed(2)}`);
  if (BEFORE) console.log(`strata init (before) / ostree init: ${(m.get('strata init (before)') / m.get('ostree init')).toFixed(2)}`);
}
else console.log('ostree is not installed: no peer figure for init');
if (hasPodman) for (const c of ['create', 'diff', 'commit']) console.log(`strata ${c} / podman ${c}: wall ${(m.get(`strata ${c}`) / m.get(`podman ${c}`)).toFixed(2)}, cpu ${(cpuOf(`strata ${c}`) / cpuOf(`podman ${c}`)).toFixed(2)}`);
else console.log('podman is not installed: no peer figures for create, diff and commit');
