#!/usr/bin/env node
// OCI interop throughput of strata against peers measured in the same run, on one image
// (3 layers: 3,000 small files and 8 files of 4 MiB, generated under .bench/oci/):
//   - import: `strata image import LAYOUT` into an empty store vs `umoci unpack` of the same
//     layout (both read, decompress and walk every layer; umoci writes files, strata blobs);
//   - export: `strata image export` (gzip, zstd) vs `tar -cf - ROOTFS | gzip -6` (resp.
//     `zstd -3`) of the unpacked tree: the compression every exporter pays.
// Each figure is the median of --runs N (default 3) wall-clock times, CLI start-up
// included; a ratio > 1 means strata is slower than the reference.
// Usage: npm run bench -- oci [--runs N]
import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import {loadavg} from 'node:os';
import * as path from 'node:path';
import {prng, root} from './_common.js';

const STRATA = path.join(root, 'node_modules', '.bin', 'strata');
const argv = process.argv.slice(2);
const runsAt = argv.indexOf('--runs');
const RUNS = runsAt >= 0 ? Number(argv[runsAt + 1]) : 3;
const base = path.join(root, '.bench', 'oci');

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, {stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26, ...opts});
  if (r.error || r.status !== 0) {
    console.error(`bench: ${cmd} ${args.join(' ')} failed: ${r.error?.message ?? r.stderr}`);
    process.exit(1);
  }
  return r.stdout.toString();
}
const time = fn => { const t = process.hrtime.bigint(); fn(); return Number(process.hrtime.bigint() - t) / 1e9; };
const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fresh = p => { fs.rmSync(p, {recursive: true, force: true}); return p; };

for (const prog of ['umoci', 'zstd', 'gzip', 'tar']) if (spawnSync('sh', ['-c', `command -v ${prog}`]).status !== 0) {
  console.error(`bench: ${prog} is not installed (npm run setup installs it as root)`);
  process.exit(1);
}

// The image: three layer directories imported with strata, exported once as the input layout.
fs.mkdirSync(base, {recursive: true});
const store0 = fresh(path.join(base, 'store0'));
const layout = fresh(path.join(base, 'layout'));
const rand = prng(42);
const words = Buffer.from('strata layer store content addressed tree blob image '.repeat(4000));
sh(STRATA, ['init', '--store', store0]);
for (let l = 0; l < 3; l++) {
  const dir = fresh(path.join(base, `layer${l}`));
  for (let i = 0; i < 1000; i++) {
    const p = path.join(dir, `d${i % 40}`, `f${l}-${i}.txt`);
    fs.mkdirSync(path.dirname(p), {recursive: true});
    const at = Math.floor(rand() * 100_000);
    fs.writeFileSync(p, words.subarray(at, at + 256 + Math.floor(rand() * 8000)));
  }
  for (let i = 0; i < (l === 0 ? 4 : 2); i++) {
    const big = Buffer.alloc(4 << 20);
    for (let j = 0; j < big.length; j += 4) big.writeUInt32LE(((rand() * 2 ** 32) >>> 0) & 0x0f0f0f0f, j); // compressible, not trivially
    fs.writeFileSync(path.join(dir, `big${l}-${i}.bin`), big);
  }
  sh(STRATA, ['import', dir, '--store', store0, '--tag', `bench:${l}`, ...(l > 0 ? ['--on', `bench:${l - 1}`] : [])]);
}
sh(STRATA, ['image', 'export', 'bench:2', layout, '--store', store0]);
const bytes = Number(sh('du', ['-sb', layout]).split('\t')[0]);

const rootfs = path.join(base, 'bundle', 'rootfs');
const results = [];
function pair(name, mine, theirs) {
  const a = [], b = [];
  for (let i = 0; i < RUNS; i++) { a.push(mine()); b.push(theirs()); }
  const [ma, mb] = [median(a), median(b)];
  results.push({name, strata: ma, reference: mb, ratio: ma / mb});
}

pair('import (vs umoci unpack)',
  () => { const s = fresh(path.join(base, 'store1')); sh(STRATA, ['init', '--store', s]); return time(() => sh(STRATA, ['image', 'import', layout, '--store', s])); },
  () => { fresh(path.join(base, 'bundle')); return time(() => sh('umoci', ['unpack', '--image', `${layout}:bench:2`, path.join(base, 'bundle')])); });
pair('export gzip (vs tar | gzip -6)',
  () => { const o = fresh(path.join(base, 'out-gzip')); return time(() => sh(STRATA, ['image', 'export', 'bench:2', o, '--store', store0])); },
  () => time(() => sh('sh', ['-c', `tar -cf - -C '${rootfs}' . | gzip -6 > /dev/null`])));
pair('export zstd (vs tar | zstd -3)',
  () => { const o = fresh(path.join(base, 'out-zstd')); return time(() => sh(STRATA, ['image', 'export', 'bench:2', o, '--store', store0, '--compress', 'zstd'])); },
  () => time(() => sh('sh', ['-c', `tar -cf - -C '${rootfs}' . | zstd -3 -q -c > /dev/null`])));

console.log(`oci bench: image of 3 layers, layout ${(bytes / 2 ** 20).toFixed(1)} MiB (gzip), ${RUNS} runs, load ${loadavg()[0].toFixed(1)}`);
for (const r of results) console.log(`${r.name.padEnd(32)} strata ${r.strata.toFixed(2)} s  reference ${r.reference.toFixed(2)} s  ratio ${r.ratio.toFixed(2)}`);
