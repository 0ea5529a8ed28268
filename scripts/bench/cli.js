#!/usr/bin/env node
// The fixed cost of a strata command: whole-process wall time of `strata --help`, `ps`,
// `images`, `init` and `create` (the installed binary, node_modules/.bin/strata), each as a
// ratio against `node -e 0` measured in the same run, and `strata init` against
// `ostree init` where ostree is installed. Rounds take every command in turn, so the
// machine's noise falls on all alike; medians. `npm run bench -- cli [ROUNDS]`.
import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {root} from './_common.js';

const STRATA = process.env.STRATA_BIN ?? path.join(root, 'node_modules', '.bin', 'strata');
const ROUNDS = Number(process.argv[2] ?? 31);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bench-cli-'));
process.on('exit', () => fs.rmSync(work, {recursive: true, force: true}));
const env = {...process.env, NO_COLOR: '1'};
delete env.STRATA_STORE;

function run(cmd, args) {
  const r = spawnSync(cmd, args, {env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8'});
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
}

// A store with one image and one container, so ps and images have something to list.
const store = path.join(work, 'store');
const src = path.join(work, 'src');
fs.mkdirSync(src);
fs.writeFileSync(path.join(src, 'hello'), 'hello\n');
run(STRATA, ['init', '--store', store]);
run(STRATA, ['import', src, '--tag', 'base:1', '--store', store]);
run(STRATA, ['create', 'base:1', '--name', 'web', '--store', store]);

const hasOstree = spawnSync('ostree', ['--version'], {stdio: 'ignore'}).status === 0;
let fresh = 0;
const next = label => path.join(work, `${label}-${fresh++}`);

/** Each case: a label and a function that runs it once (fresh directories made outside the timing). */
const cases = [
  ['node -e 0', () => ['node', () => run(process.execPath, ['-e', '0'])]],
  ['strata --help', () => ['strata', () => run(STRATA, ['--help'])]],
  ['strata ps', () => ['strata', () => run(STRATA, ['ps', '--store', store])]],
  ['strata images', () => ['strata', () => run(STRATA, ['images', '--store', store])]],
  ['strata init', () => { const d = next('init'); return ['strata', () => run(STRATA, ['init', '--store', d])]; }],
  ['strata create', () => ['strata', () => run(STRATA, ['create', 'base:1', '--store', store])]],
  ...(hasOstree ? [['ostree init', () => { const d = next('ostree'); return ['ostree', () => run('ostree', ['init', `--repo=${d}`, '--mode=bare'])]; }]] : []),
];

const times = new Map(cases.map(([label]) => [label, []]));
for (let round = -1; round < ROUNDS; round++) { // round -1 warms the page cache
  for (const [label, prepare] of cases) {
    const [, fn] = prepare();
    const t0 = process.hrtime.bigint();
    fn();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (round >= 0) times.get(label).push(ms);
  }
}
const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const m = new Map([...times].map(([label, xs]) => [label, median(xs)]));
const node = m.get('node -e 0');
console.log(`strata CLI fixed cost, ${ROUNDS} rounds, medians (load average ${os.loadavg().map(x => x.toFixed(2)).join(' ')})`);
console.log(`binary: ${path.relative(root, STRATA)}`);
console.log(`${'command'.padEnd(16)} ${'ms'.padStart(8)}  ratio to node -e 0`);
for (const [label, ms] of m) console.log(`${label.padEnd(16)} ${ms.toFixed(1).padStart(8)}  ${(ms / node).toFixed(2)}`);
if (hasOstree) console.log(`strata init / ostree init: ${(m.get('strata init') / m.get('ostree init')).toFixed(2)}`);
else console.log('ostree is not installed: no peer figure for init');
