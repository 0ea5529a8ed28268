#!/usr/bin/env node
// Many strata processes on one store (issue 11). Two figures, each a ratio against a
// reference measured in the same run:
// 1. latency of `strata ps` while an import of a FILES-file tree runs, against `strata ps` on
//    the same store idle (goal <= 1.5x);
// 2. 4 imports of distinct trees (FILES/4 files each) run at once, against the same 4 run one
//    after another (goal <= 0.8x on 2 cores).
// `npm run bench -- concurrency [FILES [ROUNDS]]` (default 100000 files, 3 rounds of part 2). Medians; the load average is printed.
import {spawn} from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {root, scratch} from './_common.js';

const STRATA = process.env.STRATA_BIN ?? path.join(root, 'node_modules', '.bin', 'strata');
const FILES = Number(process.argv[2] ?? 100_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const env = {...process.env, NO_COLOR: '1'};
delete env.STRATA_STORE;

function strata(args) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(STRATA, args, {env, stdio: ['ignore', 'ignore', 'pipe']});
    let stderr = '';
    child.stderr.on('data', d => { stderr += d; });
    child.on('error', reject);
    child.on('close', code => {
      if (code !== 0) reject(new Error(`strata ${args.join(' ')} exited ${code}: ${stderr}`));
      else resolve(Number(process.hrtime.bigint() - start) / 1e9);
    });
  });
}

/** `files` small files of their own (seeded), in directories of 100. */
async function makeTree(dir, files, seed) {
  await fs.rm(dir, {recursive: true, force: true});
  const writes = [];
  for (let d = 0; d < Math.ceil(files / 100); d++) {
    await fs.mkdir(path.join(dir, `d${d}`), {recursive: true});
    for (let f = 0; f < 100 && d * 100 + f < files; f++) writes.push(fs.writeFile(path.join(dir, `d${d}`, `f${f}`), `tree ${seed} dir ${d} file ${f}\n`.repeat(1 + (f % 9))));
    if (writes.length >= 2000) await Promise.all(writes.splice(0));
  }
  await Promise.all(writes);
}

const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = s => `${(s * 1000).toFixed(0)} ms`;

const work = await scratch('concurrency');
const store = path.join(work, 'store');
await fs.rm(store, {recursive: true, force: true});
await strata(['init', '--store', store]);
const seedTree = path.join(work, 'seed');
await makeTree(seedTree, 10, 0);
await strata(['import', seedTree, '--tag', 'base:1', '--store', store]);
await strata(['create', 'base:1', '--name', 'web', '--store', store]);
console.log(`concurrency bench: ${FILES} files, load average ${os.loadavg().map(l => l.toFixed(1)).join(' ')}, ${os.cpus().length} cores`);

// 1. ps while an import runs, against ps on the idle store.
const big = path.join(work, 'big');
await makeTree(big, FILES, 1);
const idle = [];
for (let i = 0; i < 7; i++) idle.push(await strata(['ps', '--store', store]));
let importDone = false;
const importing = strata(['import', big, '--tag', 'big:1', '--store', store]).then(s => { importDone = true; return s; });
// Until the import has begun its work (its lease is there), then ps one after another while it lasts.
while (!(await fs.readdir(path.join(store, 'leases')).catch(() => [])).length && !importDone) await new Promise(r => setTimeout(r, 10));
const during = [];
while (!importDone) {
  const s = await strata(['ps', '--store', store]);
  if (!importDone) during.push(s);
}
const importSeconds = await importing;
console.log(`\n| benchmark | measured | reference | ratio |\n|---|---:|---:|---:|`);
console.log(`| strata ps during a ${FILES}-file import (${during.length} runs; import ${importSeconds.toFixed(1)} s) | ${ms(median(during))} | idle store: ${ms(median(idle))} | ${(median(during) / median(idle)).toFixed(2)} |`);

// 2. 4 imports at once against the same 4 one after another (fresh stores, same trees).
const quarter = Math.floor(FILES / 4);
const trees = [];
for (let i = 0; i < 4; i++) {
  const dir = path.join(work, `q${i}`);
  await makeTree(dir, quarter, 10 + i);
  trees.push(dir);
}
const freshStore = async name => {
  const dir = path.join(work, name);
  await fs.rm(dir, {recursive: true, force: true});
  await strata(['init', '--store', dir]);
  return dir;
};
const serialRuns = [], parallelRuns = [];
for (let round = 0; round < ROUNDS; round++) {
  let s = await freshStore('serial');
  let start = process.hrtime.bigint();
  for (const [i, t] of trees.entries()) await strata(['import', t, '--tag', `q${i}:1`, '--store', s]);
  serialRuns.push(Number(process.hrtime.bigint() - start) / 1e9);
  s = await freshStore('parallel');
  start = process.hrtime.bigint();
  await Promise.all(trees.map((t, i) => strata(['import', t, '--tag', `q${i}:1`, '--store', s])));
  parallelRuns.push(Number(process.hrtime.bigint() - start) / 1e9);
}
console.log(`| 4 imports of ${quarter} files at once | ${median(parallelRuns).toFixed(2)} s | one after another: ${median(serialRuns).toFixed(2)} s | ${(median(parallelRuns) / median(serialRuns)).toFixed(2)} |`);
