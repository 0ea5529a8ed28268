import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type {ExecutionContext} from 'ava';

/** A fresh temporary directory, deleted when the test ends (after any mount in it is gone). */
export function tempDir(t: ExecutionContext, label = 'strata-erofs-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), label));
  t.teardown(() => fs.rmSync(dir, {recursive: true, force: true}));
  return dir;
}

/** Runs a program to completion; throws (naming it) if it is missing or fails. */
export function run(cmd: string, args: readonly string[]): {stdout: Buffer; stderr: Buffer} {
  const r = spawnSync(cmd, args, {maxBuffer: 1 << 30});
  if (r.error) throw new Error(`${cmd} could not run (${r.error.message}): this test needs it installed (Debian erofs-utils, attr)`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr.toString()}${r.stdout.toString()}`);
  return {stdout: r.stdout, stderr: r.stderr};
}

/** Fails unless root: mounting needs it (CI runs as root). */
export function needRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('this test mounts file systems and needs root; CI runs as root');
}

/** Checks an image with `fsck.erofs --extract` (every inode, directory and data block is read). */
export function fsck(image: string): string {
  const {stdout, stderr} = run('fsck.erofs', ['--extract', image]);
  return stdout.toString() + stderr.toString();
}

/** Mounts an EROFS image read-only (loop device); unmounted when the test ends. */
export function mountErofs(t: ExecutionContext, image: string, dir: string): string {
  needRoot();
  fs.mkdirSync(dir, {recursive: true});
  run('mount', ['-t', 'erofs', '-o', 'ro,loop', image, dir]);
  registerUmount(t, dir);
  return dir;
}

/**
 * Mounts overlayfs with `meta` as its only normal lower and `data` as a data-only lower
 * (`lowerdir=META::DATA`), read-only, with the options strata uses. Unmounted when the test ends.
 */
export function mountOverlay(t: ExecutionContext, meta: string, data: string, dir: string): string {
  needRoot();
  fs.mkdirSync(dir, {recursive: true});
  run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,redirect_dir=nofollow,index=off,metacopy=off,lowerdir=${meta}::${data}`, dir]);
  registerUmount(t, dir);
  return dir;
}

// Teardowns run last-registered first, so an overlay goes before the erofs under it,
// and both before the temporary directory that holds them.
function registerUmount(t: ExecutionContext, dir: string): void {
  t.teardown(() => {
    if (spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir]);
  });
}

/** What a mount shows at one path: everything stat and getfattr tell, minus what the format does not fix (ino). */
export interface Seen {
  kind: 'dir' | 'file' | 'symlink' | 'char' | 'block' | 'fifo';
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size?: number;
  nlink?: number;
  target?: string;
  dev?: [number, number];
  /** Names to hex values. */
  xattrs?: Record<string, string>;
}

/**
 * Every path under `root` (as latin1 text of its bytes, '' for the root itself) with what
 * lstat and getfattr report. Inode numbers come back apart, for hardlink checks.
 */
export function walk(root: string): {entries: Record<string, Seen>; ino: Record<string, bigint>} {
  const entries: Record<string, Seen> = {};
  const ino: Record<string, bigint> = {};
  const rootBuf = Buffer.from(root);
  const visit = (rel: Buffer) => {
    const abs = Buffer.concat([rootBuf, rel]);
    const st = fs.lstatSync(abs, {bigint: true});
    const key = rel.toString('latin1');
    const mode = Number(st.mode & 0o7777n);
    const kind = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'fifo';
    const seen: Seen = {kind, mode, uid: Number(st.uid), gid: Number(st.gid), mtime: Number(st.mtimeNs / 1_000_000_000n - (st.mtimeNs < 0n && st.mtimeNs % 1_000_000_000n !== 0n ? 1n : 0n))};
    if (kind === 'file') {
      seen.size = Number(st.size);
      seen.nlink = Number(st.nlink);
    }
    if (kind === 'symlink') seen.target = fs.readlinkSync(abs, {encoding: 'buffer'}).toString('latin1');
    if (kind === 'char' || kind === 'block') seen.dev = [Number(st.rdev >> 8n) & 0xfff, Number((st.rdev & 0xffn) | ((st.rdev >> 12n) & 0xfff00n))];
    entries[key] = seen;
    ino[key] = st.ino;
    if (kind === 'dir') {
      for (const name of fs.readdirSync(abs, {encoding: 'buffer'}).sort(Buffer.compare)) visit(Buffer.concat([rel, Buffer.from('/'), name]));
    }
  };
  visit(Buffer.alloc(0));
  for (const [p, x] of Object.entries(xattrsUnder(root))) if (entries[p]) entries[p].xattrs = x;
  return {entries, ino};
}

/** Every xattr under `root`, by path relative to it (latin1 of the bytes), in one getfattr run. */
function xattrsUnder(root: string): Record<string, Record<string, string>> {
  const {stdout} = run('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root]);
  const out: Record<string, Record<string, string>> = {};
  let current: Record<string, string> | undefined;
  for (const line of stdout.toString('latin1').split('\n')) {
    if (line.startsWith('# file: ')) {
      const p = unescapeGetfattr(line.slice(8));
      current = {};
      out[p.slice(root.length)] = current;
    } else if (current && line.includes('=')) {
      const i = line.indexOf('=');
      const v = line.slice(i + 1);
      current[line.slice(0, i)] = v.startsWith('0x') ? v.slice(2) : '';
    }
  }
  return out;
}

/** getfattr writes unprintable bytes and backslashes of names as \ooo. */
function unescapeGetfattr(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Hex of text, as getfattr -e hex prints a value. */
export const hex = (s: string | Buffer) => Buffer.from(s).toString('hex');
