#!/usr/bin/env node
// Registry push and pull of strata against skopeo, in the same run, against one loopback
// docker-registry (started here from the registry package's test harness) on fresh
// repositories. The image: one layer of a generated rootfs-like tree (--files N small and
// mid-sized files, default 3000, plus a few MiB-sized ones), and an update of it with 5% of
// the files changed, rebuilt as one layer (upd:2) and as a delta layer on top (upd:delta).
//   - cold push: `strata push` from a store that never pushed it vs `skopeo copy oci:LAYOUT`
//     of strata's gzip export (the transfer floor: no compression) and vs `skopeo copy` of
//     the plain export with --dest-compress (compression paid, as strata pays it);
//   - warm re-push of both;
//   - cold pull: `strata pull` into an empty store vs `skopeo copy docker:// oci:` followed
//     by `strata image import`;
//   - the update pulled onto a store that has upd:1: bytes fetched (registry access log).
//   - cold push with zstd vs `skopeo copy --dest-compress-format zstd` of the plain export;
//   - cold pull vs `podman pull` (vfs storage, a fresh root per run) when podman is installed;
//   - the phases of a cold push without the network: the layer's tar alone, tar + gzip and
//     tar + zstd (`strata layer export`, the push's pipeline writing to a file).
// With --compare DIR, a cold push by the strata built in checkout DIR runs in the same
// loop (e.g. main before a change), so the two builds meet the same load.
// Times are medians of --runs N (default 3) wall-clock runs, CLI start-up included, with the
// CPU seconds the commands used (user + system, every thread: the load inflates it less); bytes
// and requests come from the registry's access log. skopeo's blob-info cache is removed
// before each skopeo run, so it cannot mount from a repository an earlier run filled.
// Usage: npm run bench -- registry [--runs N] [--files N] [--compare DIR]
import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import {loadavg} from 'node:os';
import * as path from 'node:path';
import {fmtBytes, prng, root} from './_common.js';

const STRATA = path.join(root, 'node_modules', '.bin', 'strata');
const argv = process.argv.slice(2);
const arg = (name, fallback) => { const i = argv.indexOf(name); return i >= 0 ? Number(argv[i + 1]) : fallback; };
const RUNS = arg('--runs', 3);
const FILES = arg('--files', 3000);
const compareAt = argv.indexOf('--compare');
const OTHER = compareAt >= 0 ? path.join(path.resolve(argv[compareAt + 1]), 'node_modules', '.bin', 'strata') : undefined;
if (OTHER && !fs.existsSync(OTHER)) {
  console.error(`bench: ${OTHER} does not exist (install and build that checkout first)`);
  process.exit(1);
}
const hasPodman = spawnSync('sh', ['-c', 'command -v podman']).status === 0;
const base = path.join(root, '.bench', 'registry');
const SKOPEO_CACHE = '/var/lib/containers/cache/blob-info-cache-v1.boltdb';

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, {stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26, ...opts});
  if (r.error || r.status !== 0) {
    console.error(`bench: ${cmd} ${args.join(' ')} failed: ${r.error?.message ?? r.stderr}`);
    process.exit(1);
  }
  return r.stdout.toString();
}
/**
 * CPU seconds of this process's waited-for children (cutime + cstime, /proc/self/stat): the
 * work a command did, which the machine's load does not inflate as it does wall time.
 */
const childCpu = () => {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100; // fields 16 and 17, in clock ticks (100 a second on Linux)
};
let lastCpu = 0;
/** Wall seconds of fn; its children's CPU seconds are left in lastCpu. */
const time = fn => { const c = childCpu(); const t = process.hrtime.bigint(); fn(); const wall = Number(process.hrtime.bigint() - t) / 1e9; lastCpu = childCpu() - c; return wall; };
const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fresh = p => { fs.rmSync(p, {recursive: true, force: true}); return p; };
const skopeo = args => { fs.rmSync(SKOPEO_CACHE, {force: true}); return sh('skopeo', args); };

for (const prog of ['skopeo', 'docker-registry', 'openssl']) if (spawnSync('sh', ['-c', `command -v ${prog}`]).status !== 0) {
  console.error(`bench: ${prog} is not installed (npm run setup installs it as root)`);
  process.exit(1);
}
const harness = path.join(root, 'packages', 'registry', 'dist', 'test', '_registry.js');
const {startRegistry} = await import(harness).catch(err => {
  console.error('bench: the registry package is not built; run "npx tsc -b" first');
  throw err;
});
const cleanups = [];
const reg = await startRegistry({teardown: fn => cleanups.push(fn)});
process.on('exit', () => { for (const fn of cleanups) try { fn(); } catch { /* best effort */ } });

// The image and its 5% update.
fs.mkdirSync(base, {recursive: true});
const tree = fresh(path.join(base, 'tree'));
const rand = prng(7);
const words = Buffer.from('strata registry push pull layer blob manifest config digest '.repeat(4000));
const files = [];
for (let i = 0; i < FILES; i++) {
  const p = path.join(tree, `usr${i % 7}`, `d${i % 90}`, `f${i}`);
  fs.mkdirSync(path.dirname(p), {recursive: true});
  const at = Math.floor(rand() * 100_000);
  const size = rand() < 0.1 ? 20_000 + Math.floor(rand() * 60_000) : 200 + Math.floor(rand() * 6000);
  const body = Buffer.alloc(size);
  for (let j = 0; j < size; j++) body[j] = rand() < 0.7 ? words[(at + j) % words.length] : Math.floor(rand() * 256);
  fs.writeFileSync(p, body);
  files.push(p);
}
for (let i = 0; i < 4; i++) {
  const big = Buffer.alloc(2 << 20);
  for (let j = 0; j < big.length; j += 4) big.writeUInt32LE(((rand() * 2 ** 32) >>> 0) & 0x0f0f0f0f, j);
  fs.writeFileSync(path.join(tree, `big${i}.bin`), big);
}
const store0 = fresh(path.join(base, 'store0'));
sh(STRATA, ['init', '--store', store0]);
sh(STRATA, ['import', tree, '--store', store0, '--tag', 'upd:1']);
const layout = fresh(path.join(base, 'layout-gzip'));
const plain = fresh(path.join(base, 'layout-plain'));
sh(STRATA, ['image', 'export', 'upd:1', layout, '--store', store0]);
sh(STRATA, ['image', 'export', 'upd:1', plain, '--store', store0, '--compress', 'none']);
// 5% of the files changed: a small edit in each.
const delta = fresh(path.join(base, 'delta'));
for (let i = 0; i < files.length; i += 20) {
  const rel = path.relative(tree, files[i]);
  const body = fs.readFileSync(files[i]);
  body[0] ^= 0xff;
  fs.writeFileSync(files[i], body);
  fs.mkdirSync(path.dirname(path.join(delta, rel)), {recursive: true});
  fs.writeFileSync(path.join(delta, rel), body);
}
sh(STRATA, ['import', tree, '--store', store0, '--tag', 'upd:2']);
sh(STRATA, ['import', delta, '--store', store0, '--on', 'upd:1', '--tag', 'upd:delta']);
for (const t of ['upd:1', 'upd:2', 'upd:delta']) sh(STRATA, ['push', t, `${reg.host}/src/${t}`, '--tls-verify=false', '--store', store0]);

const results = [];
let repoSeq = 0;
const repo = name => `${name}${repoSeq++}/upd`;
/** Runs `fn` and returns the access-log entries it caused. */
async function logged(fn) {
  const before = (await reg.accessLog()).length;
  const seconds = fn();
  const cpu = lastCpu;
  return {seconds, cpu, log: (await reg.accessLog()).slice(before)};
}
const sum = (log, pred) => log.filter(pred).reduce((n, e) => n + e.bytes, 0);
const isUpload = e => (e.method === 'PATCH' || e.method === 'PUT') && e.path.includes('/uploads/');
const isBlobGet = e => e.method === 'GET' && e.path.includes('/blobs/');
async function pair(name, mine, theirs, bytesOf) {
  const a = [], b = [], ca = [], cb = [];
  let la, lb;
  for (let i = 0; i < RUNS; i++) {
    const x = await logged(mine()); a.push(x.seconds); ca.push(x.cpu); la = x.log;
    const y = await logged(theirs()); b.push(y.seconds); cb.push(y.cpu); lb = y.log;
  }
  results.push({name, strata: median(a), reference: median(b), cpu: [median(ca), median(cb)], requests: [la.length, lb.length], bytes: [bytesOf?.(la) ?? 0, bytesOf?.(lb) ?? 0]});
}
/** Blob uploads (PATCH requests): the access log has response sizes only, so uploads are counted, not weighed. */
const uploads = log => log.filter(e => e.method === 'PATCH').length;
const freshStore = () => { const s = fresh(path.join(base, 'store-pull')); sh(STRATA, ['init', '--store', s]); return s; };
// A template without push records: a store that imported upd:1 and never pushed it.
const coldTemplate = fresh(path.join(base, 'store-cold'));
sh(STRATA, ['init', '--store', coldTemplate]);
sh(STRATA, ['image', 'import', layout, '--store', coldTemplate, '--tag', 'upd:1']);
const coldCopy = () => { const s = fresh(path.join(base, 'store-run')); fs.cpSync(coldTemplate, s, {recursive: true}); return s; };

await pair('cold push (vs skopeo copy oci:, no compression)',
  () => { const s = coldCopy(); const r = repo('s'); return () => time(() => sh(STRATA, ['push', 'upd:1', `${reg.host}/${r}:1`, '--tls-verify=false', '--store', s])); },
  () => { const r = repo('k'); return () => time(() => skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:upd:1`, `docker://${reg.host}/${r}:1`])); },
  uploads);
await pair('cold push (vs skopeo copy --dest-compress)',
  () => { const s = coldCopy(); const r = repo('s'); return () => time(() => sh(STRATA, ['push', 'upd:1', `${reg.host}/${r}:1`, '--tls-verify=false', '--store', s])); },
  () => { const r = repo('k'); return () => time(() => skopeo(['copy', '--dest-tls-verify=false', '--dest-compress', `oci:${plain}:upd:1`, `docker://${reg.host}/${r}:1`])); },
  uploads);
await pair('cold push --compress zstd (vs skopeo zstd)',
  () => { const s = coldCopy(); const r = repo('s'); return () => time(() => sh(STRATA, ['push', 'upd:1', `${reg.host}/${r}:1`, '--tls-verify=false', '--compress', 'zstd', '--store', s])); },
  () => { const r = repo('k'); return () => time(() => skopeo(['copy', '--dest-tls-verify=false', '--dest-compress-format', 'zstd', `oci:${plain}:upd:1`, `docker://${reg.host}/${r}:1`])); },
  uploads);
if (OTHER)
  await pair('cold push (vs the --compare build)',
    () => { const s = coldCopy(); const r = repo('s'); return () => time(() => sh(STRATA, ['push', 'upd:1', `${reg.host}/${r}:1`, '--tls-verify=false', '--store', s])); },
    () => { const s = coldCopy(); const r = repo('o'); return () => time(() => sh(OTHER, ['push', 'upd:1', `${reg.host}/${r}:1`, '--tls-verify=false', '--store', s])); },
    uploads);
await pair('warm re-push (vs skopeo warm re-push)',
  () => () => time(() => sh(STRATA, ['push', 'upd:1', `${reg.host}/src/upd:1`, '--tls-verify=false', '--store', store0])),
  () => () => time(() => skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:upd:1`, `docker://${reg.host}/src/upd:1`])),
  uploads);
await pair('cold pull (vs skopeo copy + image import)',
  () => { const s = freshStore(); return () => time(() => sh(STRATA, ['pull', `${reg.host}/src/upd:1`, '--tls-verify=false', '--store', s])); },
  () => { const s = freshStore(); const o = fresh(path.join(base, 'pulled')); return () => time(() => { skopeo(['copy', '--src-tls-verify=false', `docker://${reg.host}/src/upd:1`, `oci:${o}:upd`]); sh(STRATA, ['image', 'import', o, '--store', s]); }); },
  log => sum(log, isBlobGet));

if (hasPodman) {
  const podRoot = path.join(base, 'podman');
  cleanups.push(() => fs.rmSync(podRoot, {recursive: true, force: true}));
  await pair('cold pull (vs podman pull)',
    () => { const s = freshStore(); return () => time(() => sh(STRATA, ['pull', `${reg.host}/src/upd:1`, '--tls-verify=false', '--store', s])); },
    () => { fresh(podRoot); return () => time(() => sh('podman', ['--root', path.join(podRoot, 'root'), '--runroot', path.join(podRoot, 'run'), '--storage-driver', 'vfs', 'pull', '-q', '--tls-verify=false', `docker://${reg.host}/src/upd:1`])); },
    log => sum(log, isBlobGet));
}
// The phases of a cold push, without the network: the tar, and the tar compressed.
const layerId = JSON.parse(sh(STRATA, ['image', 'inspect', 'upd:1', '--store', coldTemplate, '--json'])).layers[0].id;
const phases = [];
for (const compress of ['none', 'gzip', 'zstd']) {
  const out = path.join(base, 'phase.tar');
  const runs = Array.from({length: RUNS}, () => { fs.rmSync(out, {force: true}); return [time(() => sh(STRATA, ['layer', 'export', layerId, out, '--compress', compress, '--store', coldTemplate])), lastCpu]; });
  phases.push({compress, seconds: median(runs.map(r => r[0])), cpu: median(runs.map(r => r[1])), size: fs.statSync(out).size});
  fs.rmSync(out, {force: true});
}

// The update, onto a store that has upd:1.
const onto = () => { const s = freshStore(); sh(STRATA, ['pull', `${reg.host}/src/upd:1`, '--tls-verify=false', '--store', s]); return s; };
const whole = JSON.parse(sh(STRATA, ['image', 'export', 'upd:2', fresh(path.join(base, 'sizes')), '--store', store0, '--json'])).layers[0].size;
const updates = [];
for (const [name, ref] of [['rebuilt as one layer (upd:2)', 'src/upd:2'], ['as a delta layer on upd:1 (upd:delta)', 'src/upd:delta']]) {
  const s = onto();
  const {seconds, log} = await logged(time.bind(null, () => sh(STRATA, ['pull', `${reg.host}/${ref}`, '--tls-verify=false', '--store', s])));
  updates.push({name, seconds, fetched: sum(log, isBlobGet)});
}

// What any strata command costs before it does any work: start-up and opening the store.
const floor = median(Array.from({length: RUNS}, () => time(() => sh(STRATA, ['images', '--store', store0]))));
const layerBytes = JSON.parse(sh(STRATA, ['image', 'export', 'upd:1', fresh(path.join(base, 'sizes')), '--store', store0, '--json'])).layers[0].size;
console.log(`registry bench: one layer of ${FILES + 4} files, ${fmtBytes(layerBytes)} gzip; ${RUNS} runs, load ${loadavg()[0].toFixed(1)}`);
for (const r of results)
  console.log(`${r.name.padEnd(48)} strata ${r.strata.toFixed(2)} s  reference ${r.reference.toFixed(2)} s  ratio ${(r.strata / r.reference).toFixed(2)}  cpu ${r.cpu[0].toFixed(2)} / ${r.cpu[1].toFixed(2)} s  requests ${r.requests[0]} / ${r.requests[1]}${r.name.includes('pull') ? `  fetched ${fmtBytes(r.bytes[0])} / ${fmtBytes(r.bytes[1])}` : `  uploads ${r.bytes[0]} / ${r.bytes[1]}`}`);
console.log(`${'strata images (start-up and store open)'.padEnd(48)} ${floor.toFixed(2)} s`);
for (const p of phases) console.log(`${`layer export --compress ${p.compress}`.padEnd(48)} ${p.seconds.toFixed(2)} s  cpu ${p.cpu.toFixed(2)} s  ${fmtBytes(p.size)}`);
for (const u of updates)
  console.log(`update ${u.name.padEnd(41)} fetched ${fmtBytes(u.fetched)} (${(100 * u.fetched / whole).toFixed(1)}% of the rebuilt layer, ${fmtBytes(whole)}) in ${u.seconds.toFixed(2)} s`);
for (const fn of cleanups.reverse()) await fn();
