#!/usr/bin/env node
// `strata gc` against `ostree prune --refs-only` as a user meets them: whole processes, on a
// store and a bare repo holding the same 14 versions of a 5,000-file tree (~120 MB, sizes
// 16 B–256 KiB log-uniform, as a debootstrap minbase rootfs), each version changing 32 small
// files, 13 of the 14 untagged (refs deleted). Each round collects a fresh copy of both, in
// turn (each going first in turn); medians of wall time and of CPU time (user + system), and their ratios.
// With --compare DIR, the CLI built in another checkout DIR collects a third copy in each
// round, for a before/after figure under the same load.
// NODE_EXTRA_CA_CERTS is left out of the commands' environment: where it is set, every Node
// process reads those certificates before its first line (measured here: `node -e 0` 0.04 s
// without, 0.18–0.25 s with), a cost of the machine, not of strata. --keep-env keeps it.
//   npm run bench -- gcprune [ROUNDS] [--compare DIR] [--keep-env]
import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {prng, root, scratch} from './_common.js';

const argv = process.argv.slice(2);
const compareAt = argv.indexOf('--compare');
const compareDir = compareAt >= 0 ? argv.splice(compareAt, 2)[1] : undefined;
const keepEnv = argv.includes('--keep-env');
const STRATA = process.env.STRATA_BIN ?? path.join(root, 'node_modules', '.bin', 'strata');
const OTHER = compareDir && path.resolve(compareDir, 'packages', 'cli', 'bin', 'strata.js');
if (OTHER && !fs.existsSync(OTHER)) throw new Error(`bench: --compare ${compareDir} has no built CLI (${OTHER})`);
const ROUNDS = Number(argv.find(a => /^\d+$/.test(a)) ?? 5);
if (spawnSync('sh', ['-c', 'command -v ostree'], {stdio: 'ignore'}).status !== 0) {
  console.error('gcprune: ostree is not installed (apt-get install ostree): it is the reference of this benchmark');
  process.exit(1);
}
const env = {...process.env, NO_COLOR: '1'};
delete env.STRATA_STORE;
if (!keepEnv) delete env.NODE_EXTRA_CA_CERTS;

/** Runs a command to completion; returns wall and CPU seconds (the child's rusage). */
function run(cmd, args) {
  const start = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', cmd, ...args], {env, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe']});
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  const [user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return {wall, cpu: user + sys};
}

const work = await scratch('gcprune');
const src = path.join(work, 'src');
const store = path.join(work, 'store.orig'), repo = path.join(work, 'repo.orig');
if (!fs.existsSync(path.join(work, 'ready'))) {
  fs.rmSync(work, {recursive: true, force: true});
  fs.mkdirSync(work, {recursive: true});
  const rnd = prng(7);
  for (let d = 0; d < 200; d++) {
    fs.mkdirSync(path.join(src, `d${d}`), {recursive: true});
    for (let f = 0; f < 25; f++) {
      const n = Math.floor(Math.exp(Math.log(16) + rnd() * (Math.log(262_144) - Math.log(16))));
      fs.writeFileSync(path.join(src, `d${d}`, `f${f}`), Buffer.alloc(n, (d * 25 + f) % 251));
    }
  }
  run(STRATA, ['init', '--store', store]);
  run('ostree', ['init', `--repo=${repo}`, '--mode=bare']);
  for (let i = 0; i < 14; i++) {
    fs.writeFileSync(path.join(src, 'version'), `v${i}\n`);
    for (let j = 0; j < 31; j++) fs.writeFileSync(path.join(src, `d${j}`, 'changed'), `image ${i} ${j}\n`);
    run(STRATA, ['import', src, '--tag', `img${i}:1`, '--store', store]);
    run('ostree', ['commit', `--repo=${repo}`, '-b', `img${i}`, `--tree=dir=${src}`]);
  }
  for (let i = 1; i < 14; i++) {
    run(STRATA, ['image', 'rm', `img${i}:1`, '--store', store]);
    run('ostree', ['refs', `--repo=${repo}`, '--delete', `img${i}`]);
  }
  fs.writeFileSync(path.join(work, 'ready'), '');
}

const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const s = [], o = [], c = [];
const copies = [[store, 'store'], [repo, 'repo'], ...(OTHER ? [[store, 'store2']] : [])];
const removeCopies = () => { for (const [, copy] of copies) fs.rmSync(path.join(work, copy), {recursive: true, force: true}); };
// The commands take turns at going first: the first one after the copies and their sync ran
// measurably slower (0.06 s of wall, 0.04 s of CPU in one run, whichever CLI it was).
const steps = [
  () => s.push(run(STRATA, ['gc', '--store', path.join(work, 'store')])),
  () => o.push(run('ostree', ['prune', `--repo=${path.join(work, 'repo')}`, '--refs-only'])),
  ...(OTHER ? [() => c.push(run(process.execPath, [OTHER, 'gc', '--store', path.join(work, 'store2')]))] : []),
];
removeCopies();
for (let round = 0; round < ROUNDS; round++) {
  for (const [orig, copy] of copies) spawnSync('cp', ['-a', orig, path.join(work, copy)]);
  spawnSync('sync');
  for (let i = 0; i < steps.length; i++) steps[(round + i) % steps.length]();
  removeCopies(); // here, not just before the next round's copies and timed runs
}
const sw = median(s.map(x => x.wall)), ow = median(o.map(x => x.wall));
const sc = median(s.map(x => x.cpu)), oc = median(o.map(x => x.cpu));
console.log(`gcprune: ${ROUNDS} rounds, load average ${os.loadavg().map(l => l.toFixed(1)).join(' ')}${keepEnv ? '' : ' (without NODE_EXTRA_CA_CERTS)'}`);
if (!OTHER) {
  console.log('| 14 images, 13 untagged | strata gc | ostree prune --refs-only | ratio |\n|---|---:|---:|---:|');
  console.log(`| wall | ${sw.toFixed(2)} s | ${ow.toFixed(2)} s | ${(sw / ow).toFixed(2)} |`);
  console.log(`| CPU | ${sc.toFixed(2)} s | ${oc.toFixed(2)} s | ${(sc / oc).toFixed(2)} |`);
} else {
  const cw = median(c.map(x => x.wall)), cc = median(c.map(x => x.cpu));
  console.log('| 14 images, 13 untagged | strata gc | ostree prune --refs-only | ratio | --compare gc | ratio |\n|---|---:|---:|---:|---:|---:|');
  console.log(`| wall | ${sw.toFixed(2)} s | ${ow.toFixed(2)} s | ${(sw / ow).toFixed(2)} | ${cw.toFixed(2)} s | ${(cw / ow).toFixed(2)} |`);
  console.log(`| CPU | ${sc.toFixed(2)} s | ${oc.toFixed(2)} s | ${(sc / oc).toFixed(2)} | ${cc.toFixed(2)} s | ${(cc / oc).toFixed(2)} |`);
}
