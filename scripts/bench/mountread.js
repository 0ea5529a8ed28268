#!/usr/bin/env node
// Reading a container's files through its kernel mount against reading the same bytes from
// the store's object files directly (issue 10: goal >= 0.9 of the speed). The tree is
// files over 16 KiB only (each an object file of its own, so both sides read the same bytes
// from the same files: the overlay's data-only lower is objects/), 64 KiB-4 MiB, distinct.
// Each round reads everything through the mount and everything from objects/ in turn,
// with the page cache dropped before each (cold: the disk and the overlay's lookups) and
// again without dropping it (warm: what the overlay and EROFS add to a cached read).
//   npm run bench -- mountread [--runs N] [--mib M]      (root: mounts, drop_caches)
//   STRATA_BIN=path/to/another/strata times another build the same way.
import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {prng, root} from './_common.js';

const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : dflt);
const RUNS = opt('--runs', 5);
const MIB = opt('--mib', 256);
const STRATA = process.env.STRATA_BIN ?? path.join(root, 'node_modules', '.bin', 'strata');
if (process.getuid?.() !== 0) {
  console.error('bench: mounting a container and dropping the page cache need root');
  process.exit(1);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bench-mountread-'));
const store = path.join(work, 'store');
const env = {...process.env, STRATA_STORE: store, NO_COLOR: '1'};
process.on('exit', () => {
  spawnSync(STRATA, ['umount', 'reader'], {env});
  fs.rmSync(work, {recursive: true, force: true});
});

function strata(...args) {
  const r = spawnSync(STRATA, args, {env, encoding: 'utf8'});
  if (r.status !== 0) throw new Error(`strata ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Every regular file under a directory. */
function filesUnder(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, {withFileTypes: true})) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

const chunk = Buffer.allocUnsafe(1 << 20);
/** Seconds to read every byte of the files, and the bytes read. */
function readAll(files) {
  const start = process.hrtime.bigint();
  let bytes = 0;
  for (const f of files) {
    const fd = fs.openSync(f, 'r');
    try {
      for (let n; (n = fs.readSync(fd, chunk, 0, chunk.length, null)) > 0;) bytes += n;
    } finally {
      fs.closeSync(fd);
    }
  }
  return {s: Number(process.hrtime.bigint() - start) / 1e9, bytes};
}

function dropCaches() {
  spawnSync('sync');
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
}

// The tree: distinct files, sizes log-uniform in 64 KiB-4 MiB, up to MIB MiB in all.
const src = path.join(work, 'src');
const rnd = prng(11);
let total = 0;
for (let i = 0; total < MIB * 1024 * 1024; i++) {
  const size = Math.floor(Math.exp(Math.log(65_536) + rnd() * (Math.log(4 << 20) - Math.log(65_536))));
  const dir = path.join(src, `d${Math.floor(i / 50)}`);
  fs.mkdirSync(dir, {recursive: true});
  const b = Buffer.allocUnsafe(size);
  for (let j = 0; j < size; j += 4) b.writeUInt32LE((Math.imul(i + 1, 2_654_435_761) ^ j) >>> 0, Math.min(j, size - 4));
  fs.writeFileSync(path.join(dir, `f${i}`), b);
  total += size;
}
strata('init');
strata('import', src, '--tag', 'read:1');
strata('create', 'read:1', '--name', 'reader');
const at = strata('mount', 'reader').trim();
const throughMount = filesUnder(at);
const objectFiles = filesUnder(path.join(store, 'objects'));

const cold = {mount: [], direct: []}, warm = {mount: [], direct: []};
let bytes = {};
for (let r = 0; r < RUNS; r++) {
  for (const [side, files] of [['mount', throughMount], ['direct', objectFiles]]) {
    dropCaches();
    const c = readAll(files);
    cold[side].push(c.s);
    warm[side].push(readAll(files).s);
    bytes[side] = c.bytes;
  }
}
if (bytes.mount !== bytes.direct) throw new Error(`bench: the mount gave ${bytes.mount} bytes, the object files ${bytes.direct}`);

const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = s => (bytes.direct / s / 1e6).toFixed(0);
console.log(`load average ${os.loadavg().map(l => l.toFixed(1)).join(' ')}; ${throughMount.length} files, ${(bytes.direct / 1048576).toFixed(0)} MiB; ${RUNS} rounds, medians`);
console.log('| read | through the mount | object files directly | speed ratio (goal >= 0.9) |');
console.log('|---|---:|---:|---:|');
for (const [name, t] of [['cold (page cache dropped)', cold], ['warm (page cache)', warm]]) {
  const m = median(t.mount), d = median(t.direct);
  console.log(`| ${name} | ${m.toFixed(3)} s (${mb(m)} MB/s) | ${d.toFixed(3)} s (${mb(d)} MB/s) | ${(d / m).toFixed(2)} |`);
}
