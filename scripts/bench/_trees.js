// Generated input trees shared by the checkout and scale benchmarks. Deterministic (a
// seeded PRNG, fixed mtimes), so every run and every machine gets the same tree.
import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {prng} from './_common.js';

const MTIME = 1_700_000_000;
const root = process.getuid?.() === 0;

/** Bytes of `size` from the PRNG: distinct content per file, cheap to make (no crypto). */
function bytes(rand, size) {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i + 4 <= size; i += 4) b.writeUInt32LE((rand() * 0x100000000) >>> 0, i);
  for (let i = size - (size % 4); i < size; i++) b[i] = (rand() * 256) | 0;
  return b;
}

/** Sets every mtime to MTIME, children before their directories, without following links. */
function fixTimes(dir) {
  const r = spawnSync('sh', ['-c', 'find "$1" -depth -exec touch -h -d @1700000000 {} +', 'sh', dir]);
  if (r.status !== 0) throw new Error(`bench: touch over ${dir} failed`);
}

/**
 * About a debootstrap minbase rootfs (5,237 files, 120 MB): ~5,000 regular files of mixed
 * sizes (most under 16 KiB, a tail of libraries up to a few MiB), ~700 directories, ~600
 * symlinks, a few hardlink groups, setuid files, files with owners other than root, a
 * file capability, and (as root) /dev's device nodes and a fifo.
 */
export function generateRootfs(dir) {
  const rand = prng(5237);
  const pick = xs => xs[Math.floor(rand() * xs.length)];
  const logUniform = (lo, hi) => Math.round(lo * (hi / lo) ** rand());
  const top = ['bin', 'etc', 'lib', 'sbin', 'usr/bin', 'usr/sbin', 'usr/lib', 'usr/share', 'usr/share/doc', 'usr/share/locale', 'usr/lib/x86_64-linux-gnu', 'var/lib', 'var/cache', 'etc/default', 'usr/share/perl5', 'usr/lib/python3'];
  const dirs = [];
  for (const t of top) {
    fs.mkdirSync(path.join(dir, t), {recursive: true});
    dirs.push(t);
  }
  while (dirs.length < 700) {
    const d = path.posix.join(pick(dirs), `d${dirs.length}`);
    fs.mkdirSync(path.join(dir, d));
    dirs.push(d);
  }
  // Size classes: [count, min, max] (log-uniform inside a class).
  const classes = [[2700, 32, 4096], [1600, 4096, 16384], [590, 16384, 131072], [100, 131072, 1048576], [12, 1048576, 4 * 1048576]];
  const files = [];
  let n = 0;
  for (const [count, lo, hi] of classes) {
    for (let i = 0; i < count; i++, n++) {
      const rel = path.posix.join(pick(dirs), `f${n}${pick(['', '.so', '.conf', '.gz', '.pm', '.py'])}`);
      const mode = rand() < 0.15 ? 0o755 : 0o644;
      fs.writeFileSync(path.join(dir, rel), bytes(rand, logUniform(lo, hi)), {mode});
      fs.chmodSync(path.join(dir, rel), mode);
      files.push(rel);
    }
  }
  for (let i = 0; i < 600; i++) fs.symlinkSync(pick(['../', '', '/usr/lib/']) + path.posix.basename(pick(files)), path.join(dir, pick(dirs), `l${i}`));
  for (let i = 0; i < 12; i++) {
    const target = files[i * 97];
    fs.linkSync(path.join(dir, target), path.join(dir, path.posix.dirname(target), `hl${i}`));
  }
  for (let i = 0; i < 6; i++) fs.chmodSync(path.join(dir, files[50 + i]), 0o4755);
  if (root) {
    for (let i = 0; i < 30; i++) fs.lchownSync(path.join(dir, files[200 + i]), 0, 42);
    fs.chmodSync(path.join(dir, files[205]), 0o2755);
    spawnSync('setcap', ['cap_net_raw+ep', path.join(dir, files[300])]);
    fs.mkdirSync(path.join(dir, 'dev'));
    for (const [name, type, major, minor] of [['null', 'c', 1, 3], ['zero', 'c', 1, 5], ['full', 'c', 1, 7], ['random', 'c', 1, 8], ['urandom', 'c', 1, 9], ['tty', 'c', 5, 0], ['console', 'c', 5, 1], ['ptmx', 'c', 5, 2]])
      spawnSync('mknod', [path.join(dir, 'dev', name), type, String(major), String(minor)]);
    spawnSync('mknod', [path.join(dir, 'run-initctl'), 'p']);
  }
  fs.chmodSync(path.join(dir, 'var/cache'), 0o700);
  fixTimes(dir);
}

/**
 * `files` small files (64 B to 8 KiB, log-uniform) in directories of `perDir`, two levels deep.
 * Fast enough for a million files (about a minute here): each file is a slice of one PRNG
 * pool made once, behind a header of its own index (so no two files share content), written
 * with open/write/futimes/close; directories get their mtime after their last file.
 */
export function generateSmallFiles(dir, files, perDir = 100) {
  const rand = prng(files);
  const POOL = 1 << 20;
  const pool = Buffer.alloc(POOL + 8192);
  const words = new Uint32Array(pool.buffer, pool.byteOffset, pool.length / 4);
  for (let i = 0; i < words.length; i++) words[i] = (rand() * 0x100000000) >>> 0;
  const dirs = Math.ceil(files / perDir);
  const fanout = Math.max(1, Math.ceil(Math.sqrt(dirs)));
  const made = [];
  for (let i = 0; i < files; i++) {
    const d = Math.floor(i / perDir);
    const sub = path.join(dir, `a${Math.floor(d / fanout)}`, `b${d}`);
    if (i % perDir === 0) {
      fs.mkdirSync(sub, {recursive: true});
      made.push(sub);
    }
    const size = Math.round(64 * 128 ** rand());
    const start = Math.floor(rand() * POOL);
    const b = pool.subarray(start, start + size);
    const head = Buffer.alloc(16);
    head.write(`${i}`.padStart(16, '0'));
    const fd = fs.openSync(path.join(sub, `f${i}`), 'w', 0o644);
    try {
      fs.writeSync(fd, head);
      fs.writeSync(fd, b, 0, size - head.length);
      fs.futimesSync(fd, MTIME, MTIME);
    } finally {
      fs.closeSync(fd);
    }
  }
  // Deepest first, so a parent's mtime is set after its children are made.
  for (const sub of made) fs.utimesSync(sub, MTIME, MTIME);
  for (const a of new Set(made.map(m => path.dirname(m)))) fs.utimesSync(a, MTIME, MTIME);
  fs.utimesSync(dir, MTIME, MTIME);
}

/** Generates a tree once under `dir` (a `.done` marker beside it); returns `dir`. */
export function ensureTree(dir, make) {
  const done = `${dir}.done`;
  if (fs.existsSync(done)) return dir;
  fs.rmSync(dir, {recursive: true, force: true});
  fs.mkdirSync(dir, {recursive: true});
  make(dir);
  fs.writeFileSync(done, '');
  return dir;
}

/** Regular files and their bytes under `dir` (hardlinks once), with `du`'s help. */
export function treeSize(dir) {
  const r = spawnSync('sh', ['-c', 'find "$1" -type f | wc -l; du -sb "$1" | cut -f1', 'sh', dir], {encoding: 'utf8'});
  const [files, bytes] = r.stdout.trim().split('\n').map(Number);
  return {files, bytes};
}

export {MTIME};
