#!/usr/bin/env node
// `strata checkout` of an image against `cp -a` of the same tree, whole processes, in the
// same run: the goal is a checkout at copy speed (ratio <= 1.2). Trees, generated once under
// .bench/checkout/ (scripts/bench/_trees.js): "rootfs", about a debootstrap minbase (~5,000
// files, ~120 MB, mixed sizes, symlinks, hardlinks, setuid files, devices as root), and
// "small10k", 10,000 files of 64 B to 8 KiB. Each is imported into one store once. Every run
// removes the outputs and syncs, then times cp -a and strata checkout, taking turns going first.
// With --compare DIR, also runs the strata CLI built in another checkout DIR (e.g. main
// before this work) in the same loop. Median of --runs (default 5).
//   npm run bench -- checkout [rootfs|small10k ...] [--runs N] [--compare DIR]
import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import {loadavg} from 'node:os';
import * as path from 'node:path';
import {fmtBytes, root, scratch} from './_common.js';
import {ensureTree, generateRootfs, generateSmallFiles, treeSize} from './_trees.js';

const argv = process.argv.slice(2);
const option = (name, dflt) => {
  const at = argv.indexOf(name);
  return at >= 0 ? argv.splice(at, 2)[1] : dflt;
};
const RUNS = Number(option('--runs', '5'));
const compareDir = option('--compare', undefined);
const only = argv.length > 0 ? argv : ['rootfs', 'small10k'];
const TREES = {rootfs: generateRootfs, small10k: dir => generateSmallFiles(dir, 10_000)};

const strata = path.join(root, 'packages', 'cli', 'bin', 'strata.js');
const other = compareDir && path.resolve(compareDir, 'packages', 'cli', 'bin', 'strata.js');
if (other && !fs.existsSync(other)) throw new Error(`bench: no strata CLI at ${other}`);

function run(cmd, args) {
  const r = spawnSync(cmd, args, {encoding: 'utf8'});
  if (r.status !== 0) throw new Error(`bench: ${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Wall seconds of a whole process, and its CPU (user + system) from /usr/bin/time. */
function timed(cmd, args) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S', cmd, ...args], {encoding: 'utf8'});
  if (r.status !== 0) throw new Error(`bench: ${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr}`);
  const [wall, user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return {wall, cpu: user + sys};
}

const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const base = await scratch('checkout');
const storeDir = path.join(base, 'store');
if (!fs.existsSync(path.join(storeDir, 'strata.json'))) run(process.execPath, [strata, 'init', '--store', storeDir]);
console.log(`load average at start: ${loadavg().map(l => l.toFixed(1)).join(' ')} (2 cores here: above ~2, other work shares the CPU)`);
console.log(`strata checkout vs cp -a of the same tree, whole processes, median of ${RUNS} runs (node ${process.version})\n`);
const rows = [];
for (const name of only) {
  const make = TREES[name];
  if (!make) throw new Error(`bench: unknown tree ${name} (one of ${Object.keys(TREES).join(', ')})`);
  const tree = ensureTree(path.join(base, name), make);
  const tag = `bench-${name}:1`;
  const done = path.join(base, `${name}.imported`);
  if (!fs.existsSync(done)) {
    run(process.execPath, [strata, 'import', tree, '--tag', tag, '--store', storeDir]);
    fs.writeFileSync(done, '');
  }
  const {files, bytes} = treeSize(tree);
  const out = path.join(base, 'out');
  const sides = [
    ['cp -a', () => timed('cp', ['-a', tree, out])],
    ['strata checkout', () => timed(process.execPath, [strata, 'checkout', tag, out, '--store', storeDir])],
    ...(other ? [['--compare checkout', () => timed(process.execPath, [other, 'checkout', tag, out, '--store', storeDir])]] : []),
  ];
  const times = new Map(sides.map(([label]) => [label, []]));
  for (let r = 0; r < RUNS; r++) {
    const order = r % 2 ? [...sides].reverse() : sides;
    for (const [label, fn] of order) {
      fs.rmSync(out, {recursive: true, force: true});
      spawnSync('sync');
      times.get(label).push(fn());
    }
  }
  fs.rmSync(out, {recursive: true, force: true});
  console.log(`${name}: ${files} files, ${fmtBytes(bytes)}`);
  const cp = median(times.get('cp -a').map(t => t.wall));
  for (const [label] of sides) {
    const wall = median(times.get(label).map(t => t.wall));
    const cpu = median(times.get(label).map(t => t.cpu));
    const ratio = label === 'cp -a' ? '' : `   ratio to cp -a ${(wall / cp).toFixed(2)}x the time`;
    console.log(`  ${label.padEnd(20)} ${wall.toFixed(2).padStart(6)} s  (cpu ${cpu.toFixed(2)} s)${ratio}`);
  }
  rows.push(name);
  console.log('');
}
console.log(`load average at end: ${loadavg().map(l => l.toFixed(1)).join(' ')}`);
