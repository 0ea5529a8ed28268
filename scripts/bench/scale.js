#!/usr/bin/env node
// Peak memory (RssAnon and RSS, sampled from /proc), wall time and CPU time of whole strata
// commands as the tree grows: import, checkout, layer export, image export, commit, verify
// and gc over trees of small files (64 B to 8 KiB, 100 per directory; scripts/bench/_trees.js).
// A command whose memory does not grow with the tree shows the same peak at every size; the
// "per file" column is the growth of RssAnon from the smallest size to the largest divided
// by the files added.
//   npm run bench -- scale [--sizes 10000,100000,1000000] [--compare DIR] [--runs N] [--commands import,checkout,commit]
// (default 10,000 and 100,000; BENCH_SCALE_1M=1 adds 1,000,000: about 1.7 GB of file bytes,
// 4.6 GB on disk per copy, and a run needs about 16 KB of free disk per file, checked first).
// With --compare DIR, the CLI built in another checkout DIR runs the same commands on the same
// tree in a store of its own, right after this build's, and a second table shows its figures
// and this build's CPU time over its.
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
if (sizes.some(n => !Number.isInteger(n) || n < 100)) throw new Error(`bench: --sizes takes whole numbers of files (at least 100), not ${argv[sizesAt + 1]}`);
const compareAt = argv.indexOf('--compare');
const builds = [['this', path.join(root, 'packages', 'cli', 'bin', 'strata.js')]];
if (compareAt >= 0) {
  const other = path.resolve(argv[compareAt + 1], 'packages', 'cli', 'bin', 'strata.js');
  if (!fs.existsSync(other)) throw new Error(`bench: --compare ${argv[compareAt + 1]} has no built CLI (${other})`);
  builds.push(['compare', other]);
}
// --commands import,checkout,commit runs only those (import always runs: the others need its store).
const commandsAt = argv.indexOf('--commands');
const ALL = ['import', 'checkout', 'layer export', 'image export', 'commit', 'verify', 'gc'];
const wanted = new Set(commandsAt >= 0 ? ['import', ...argv[commandsAt + 1].split(',').map(c => c.replace('-', ' '))] : ALL);
for (const c of wanted) if (!ALL.includes(c)) throw new Error(`bench: --commands takes some of ${ALL.map(a => a.replace(' ', '-')).join(',')}, not ${c}`);
/** Free disk a run needs per file: the tree, the store, a checkout or an export, the container's copy. */
const DISK_PER_FILE = 16 * 1024;

/** CPU seconds (user + system) of this process's children that have ended and been waited for. */
function childCpu() {
  const fields = fs.readFileSync('/proc/self/stat', 'utf8').replace(/^.*\) /s, '').split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100; // cutime, cstime in clock ticks (USER_HZ 100)
}

/**
 * Runs a strata command, sampling /proc/PID/status every 20 ms: the peak of RssAnon (the
 * process's own memory: heap, buffers) and of VmHWM (all of its RSS, which also counts the
 * pages of LevelDB's table files it maps and touched: clean, shared, and given back under
 * pressure). Wall seconds, CPU seconds (the child's user and system time, read from this
 * process's cutime/cstime once it is reaped: only one command runs at a time), stdout.
 */
function measured(strata, args, store) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const cpuBefore = childCpu();
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
      resolve({anon, rss: hwm, seconds: Number(process.hrtime.bigint() - start) / 1e9, cpu: childCpu() - cpuBefore, stdout});
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
console.log(`peak RSS (MiB), wall and CPU seconds of whole strata commands (node ${process.version})\n`);
const runsAt = argv.indexOf('--runs');
const runs = runsAt >= 0 ? Number(argv[runsAt + 1]) : 1;
const results = new Map(); // build -> command -> files -> [{anon, rss, seconds, cpu}], one per run
const record = (build, name, files, m) => {
  if (!results.has(build)) results.set(build, new Map());
  const byCommand = results.get(build);
  if (!byCommand.has(name)) byCommand.set(name, new Map());
  const bySize = byCommand.get(name);
  if (!bySize.has(files)) bySize.set(files, []);
  bySize.get(files).push({anon: m.anon, rss: m.rss, seconds: m.seconds, cpu: m.cpu});
  console.log(`  ${build.padEnd(8)} ${name.padEnd(13)} anon ${mib(m.anon).padStart(5)} MiB  rss ${mib(m.rss).padStart(5)} MiB ${m.seconds.toFixed(1).padStart(7)} s  cpu ${m.cpu.toFixed(1).padStart(6)} s`);
};

/** Refuses to start a size the disk cannot hold, rather than failing (or skipping it) half way. */
function checkDisk(files) {
  const {bavail, bsize} = fs.statfsSync(base);
  const need = files * DISK_PER_FILE;
  if (bavail * bsize < need) throw new Error(`bench: ${files} files need about ${(need / 1e9).toFixed(1)} GB free under ${base}; there are ${(bavail * bsize / 1e9).toFixed(1)} GB`);
}

async function runCommands(build, strata, files, tree) {
  // Named by this process, so two runs can share the generated trees.
  const store = path.join(base, `store-${build}-${process.pid}`);
  const out = path.join(base, `out-${process.pid}`);
  fs.rmSync(store, {recursive: true, force: true});
  fs.rmSync(out, {recursive: true, force: true});
  spawnSync(process.execPath, [strata, 'init', '--store', store]);
  const imported = await measured(strata, ['import', tree, '--tag', 'scale:1', '--json'], store);
  record(build, 'import', files, imported);
  const layer = JSON.parse(imported.stdout).layer;
  if (wanted.has('checkout')) record(build, 'checkout', files, await measured(strata, ['checkout', 'scale:1', out], store));
  fs.rmSync(out, {recursive: true, force: true});
  if (wanted.has('layer export')) record(build, 'layer export', files, await measured(strata, ['layer', 'export', layer, out, '--compress', 'none'], store));
  fs.rmSync(out, {recursive: true, force: true});
  if (wanted.has('image export')) record(build, 'image export', files, await measured(strata, ['image', 'export', 'scale:1', out, '--compress', 'none'], store));
  fs.rmSync(out, {recursive: true, force: true});
  // An empty image, and a container over it whose upper holds the whole tree.
  const empty = path.join(base, 'empty');
  fs.mkdirSync(empty, {recursive: true});
  spawnSync(process.execPath, [strata, 'import', empty, '--tag', 'empty:1', '--store', store]);
  const created = JSON.parse((await measured(strata, ['create', 'empty:1', '--json'], store)).stdout);
  if (wanted.has('commit')) {
    sh('cp -a "$1/." "$2/"', tree, path.join(store, 'containers', created.id, 'upper'));
    record(build, 'commit', files, await measured(strata, ['commit', created.id], store));
  }
  if (wanted.has('verify')) record(build, 'verify', files, await measured(strata, ['verify'], store));
  spawnSync(process.execPath, [strata, 'rm', created.id, '--store', store]);
  spawnSync(process.execPath, [strata, 'image', 'rm', 'scale:1', '--store', store]);
  if (wanted.has('gc')) record(build, 'gc', files, await measured(strata, ['gc'], store));
  fs.rmSync(store, {recursive: true, force: true});
}

for (const files of sizes) {
  const dir = path.join(base, `tree-${files}`);
  if (!fs.existsSync(`${dir}.done`)) {
    checkDisk(2 * files); // the tree stays, so it counts on top of a run's own needs
    const t = process.hrtime.bigint();
    ensureTree(dir, d => generateSmallFiles(d, files));
    console.log(`generated ${files} files in ${(Number(process.hrtime.bigint() - t) / 1e9).toFixed(1)} s`);
  }
  checkDisk(files);
  console.log(`${files} files`);
  for (let run = 0; run < runs; run++) {
    // Builds take turns going first, so a load that comes and goes falls on both.
    for (const [build, strata] of run % 2 ? [...builds].reverse() : builds) await runCommands(build, strata, files, dir);
  }
  console.log('');
}

const median = xs => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
/** The median of each figure over the runs of one command at one size. */
const mid = ms => ({anon: median(ms.map(m => m.anon)), rss: median(ms.map(m => m.rss)), seconds: median(ms.map(m => m.seconds)), cpu: median(ms.map(m => m.cpu))});
for (const [build, byCommand] of results) {
  console.log(`${build === 'this' ? 'this build' : `--compare ${argv[compareAt + 1]}`}: peak RssAnon / peak RSS in MiB (wall s, CPU s)${runs > 1 ? `, medians of ${runs} runs` : ''}; growth: RssAnon added per file from the smallest size to the largest`);
  console.log('| command | ' + sizes.map(n => `${n.toLocaleString('en')} files`).join(' | ') + ' | growth per file |');
  console.log('|---|' + sizes.map(() => '---:|').join('') + '---:|');
  for (const [name, bySize] of byCommand) {
    const rows = sizes.map(n => mid(bySize.get(n)));
    const per = sizes.length > 1 ? `${((rows.at(-1).anon - rows[0].anon) / (sizes.at(-1) - sizes[0])).toFixed(0)} B` : '-';
    console.log(`| ${name} | ${rows.map(r => `${mib(r.anon)} / ${mib(r.rss)} (${r.seconds.toFixed(1)} s, ${r.cpu.toFixed(1)} s)`).join(' | ')} | ${per} |`);
  }
  console.log('');
}
if (builds.length > 1) {
  console.log('this build over --compare, same tree, same run: CPU seconds, then peak RssAnon');
  for (const [name, bySize] of results.get('this')) {
    const theirs = results.get('compare').get(name);
    const ratio = (f, n) => (mid(bySize.get(n))[f] / mid(theirs.get(n))[f]).toFixed(2);
    console.log(`  ${name.padEnd(13)} cpu ${sizes.map(n => `${n}: ${ratio('cpu', n)}x`).join('  ')}   anon ${sizes.map(n => `${n}: ${ratio('anon', n)}x`).join('  ')}`);
  }
}
console.log(`\nload average at end: ${loadavg().map(l => l.toFixed(1)).join(' ')}`);
