#!/usr/bin/env node
// Peak memory (RssAnon and RSS, sampled from /proc) of whole strata commands as the tree grows:
// import, checkout, commit, layer export, image export, verify and gc over trees of 10k and
// 100k small files (64 B to 8 KiB, 100 per directory; scripts/bench/_trees.js), and 1M with
// BENCH_SCALE_1M=1 (about 1.7 GB of files; not for tests). A command whose memory does not
// grow with the tree shows the same peak at every size; the "per file" column is the growth
// from the smallest size to the largest divided by the files added.
//   npm run bench -- scale [--sizes 10000,100000]      BENCH_SCALE_1M=1 adds 1,000,000
// Each size gets a fresh store under .bench/scale/; trees are generated once and kept.
// commit: a container of an empty image whose writable layer holds the whole tree (copied
// into the upper directory by cp -a: a plain directory is a writable layer in the kernel form).
import {spawn, spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import {loadavg} from 'node:os';
import * as path from 'node:path';
import {root, scratch} from './_common.js';
import {ensureTree, generateSmallFiles} from './_trees.js';

const argv = process.argv.slice(2);
const sizesAt = argv.indexOf('--sizes');
const sizes = sizesAt >= 0 ? argv[sizesAt + 1].split(',').map(Number) : [10_000, 100_000, ...(process.env.BENCH_SCALE_1M === '1' ? [1_000_000] : [])];
const strata = path.join(root, 'packages', 'cli', 'bin', 'strata.js');

/**
 * Runs a strata command, sampling /proc/PID/status every 20 ms: the peak of RssAnon (the
 * process's own memory: heap, buffers) and of VmHWM (all of its RSS, which also counts the
 * pages of LevelDB's table files it maps and touched: clean, shared, and given back under
 * pressure). Wall seconds, stdout.
 */
function measured(args, store) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(process.execPath, [strata, ...args, '--store', store], {stdio: ['ignore', 'pipe', 'pipe']});
    let stdout = '', stderr = '', anon = 0, hwm = 0;
    child.stdout.setEncoding('utf8').on('data', d => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', d => { stderr += d; });
    const sample = () => {
      try {
        const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
        anon = Math.max(anon, Number(/RssAnon:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024);
        hwm = Math.max(hwm, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024);
      } catch { /* gone */ }
    };
    const timer = setInterval(sample, 20);
    child.on('error', reject);
    child.on('close', code => {
      clearInterval(timer);
      if (code !== 0) return reject(new Error(`bench: strata ${args.join(' ')} failed (exit ${code}): ${stderr}`));
      resolve({anon, rss: hwm, seconds: Number(process.hrtime.bigint() - start) / 1e9, stdout});
    });
  });
}

function sh(cmd, ...args) {
  const r = spawnSync('sh', ['-c', cmd, 'sh', ...args], {stdio: ['ignore', 'ignore', 'inherit']});
  if (r.status !== 0) throw new Error(`bench: "${cmd}" failed (exit ${r.status})`);
}

const base = await scratch('scale');
const mib = b => (b / (1 << 20)).toFixed(0);
console.log(`load average at start: ${loadavg().map(l => l.toFixed(1)).join(' ')}`);
console.log(`peak RSS (MiB) and wall seconds of whole strata commands (node ${process.version})\n`);
const results = new Map(); // command -> [{files, rss, seconds}]
const record = (name, files, m) => {
  if (!results.has(name)) results.set(name, []);
  results.get(name).push({files, anon: m.anon, rss: m.rss, seconds: m.seconds});
  console.log(`  ${name.padEnd(14)} anon ${mib(m.anon).padStart(5)} MiB  rss ${mib(m.rss).padStart(5)} MiB ${m.seconds.toFixed(1).padStart(7)} s`);
};
for (const files of sizes) {
  const tree = ensureTree(path.join(base, `tree-${files}`), dir => generateSmallFiles(dir, files));
  const store = path.join(base, 'store');
  const out = path.join(base, 'out');
  fs.rmSync(store, {recursive: true, force: true});
  fs.rmSync(out, {recursive: true, force: true});
  console.log(`${files} files`);
  spawnSync(process.execPath, [strata, 'init', '--store', store]);
  const imported = await measured(['import', tree, '--tag', 'scale:1', '--json'], store);
  record('import', files, imported);
  const layer = JSON.parse(imported.stdout).layer;
  record('checkout', files, await measured(['checkout', 'scale:1', out], store));
  fs.rmSync(out, {recursive: true, force: true});
  record('layer export', files, await measured(['layer', 'export', layer, out, '--compress', 'none'], store));
  fs.rmSync(out, {recursive: true, force: true});
  record('image export', files, await measured(['image', 'export', 'scale:1', out, '--compress', 'none'], store));
  fs.rmSync(out, {recursive: true, force: true});
  // An empty image, and a container over it whose upper holds the whole tree.
  const empty = path.join(base, 'empty');
  fs.mkdirSync(empty, {recursive: true});
  spawnSync(process.execPath, [strata, 'import', empty, '--tag', 'empty:1', '--store', store]);
  const created = JSON.parse((await measured(['create', 'empty:1', '--json'], store)).stdout);
  sh('cp -a "$1/." "$2/"', tree, path.join(store, 'containers', created.id, 'upper'));
  record('commit', files, await measured(['commit', created.id], store));
  record('verify', files, await measured(['verify'], store));
  spawnSync(process.execPath, [strata, 'rm', created.id, '--store', store]);
  spawnSync(process.execPath, [strata, 'image', 'rm', 'scale:1', '--store', store]);
  record('gc', files, await measured(['gc'], store));
  fs.rmSync(store, {recursive: true, force: true});
  console.log('');
}

console.log('peak RssAnon / peak RSS in MiB (wall seconds); growth: RssAnon added per file from the smallest size to the largest');
console.log('| command | ' + sizes.map(n => `${n.toLocaleString('en')} files`).join(' | ') + ' | growth per file |');
console.log('|---|' + sizes.map(() => '---:|').join('') + '---:|');
for (const [name, rows] of results) {
  const first = rows[0], last = rows.at(-1);
  const per = rows.length > 1 ? `${((last.anon - first.anon) / (last.files - first.files)).toFixed(0)} B` : '-';
  console.log(`| ${name} | ${rows.map(r => `${mib(r.anon)} / ${mib(r.rss)} (${r.seconds.toFixed(1)} s)`).join(' | ')} | ${per} |`);
}
console.log(`\nload average at end: ${loadavg().map(l => l.toFixed(1)).join(' ')}`);
