import * as fs from 'node:fs';
import {spawnSync} from 'node:child_process';
import * as path from 'node:path';
import {type Digest, createHasher, hashBytes} from './digest.js';
import {fsPath} from './names.js';
import {inlineBlobValueAt} from '../index/values.js';
import {randomHex} from '../host/randomHex.js';

/** Files up to this size are read into memory whole: one read, hash, and a write only if new. */
export const READ_WHOLE_MAX = 64 * 1024 * 1024;
const CHUNK = 1024 * 1024;

/** Where a store keeps large blobs and temporary files; what a hashing thread needs to know. */
export interface BlobDirs {
  readonly dir: string;
  readonly inlineMax: number;
  /**
   * Leave new object files unsynced in tmp/ (`staged`) for the caller to make durable
   * together and then place (`placeStaged`), instead of fsync and rename one by one.
   */
  readonly stage?: boolean;
}

/** A file's blob: small ones carry their index value (their bytes), large ones are in objects/ already. */
export interface FileBlob {
  readonly digest: Digest;
  readonly size: number;
  /** An inline blob's index value, `00` + its bytes (index/values.ts), in a buffer of its own. */
  readonly value?: Uint8Array;
  /** With `stage`: the temp file that holds the bytes, not yet fsynced nor in place. */
  readonly staged?: string;
}

/** `objects/b3/<2 hex>/<62 hex>` under a store directory. */
export function objectPathIn(dir: string, d: Digest): string {
  const hex = d.slice(3);
  return path.join(dir, 'objects', 'b3', hex.slice(0, 2), hex.slice(2));
}

export function tmpPathIn(dir: string, label: string): string {
  return path.join(dir, 'tmp', `${label}-${process.pid}-${randomHex(6)}`);
}

/**
 * Reads a host file once with synchronous calls (meant for a hashing thread: on Linux the
 * libuv round trip of each async call costs more than the call), hashing as it reads.
 * A blob up to `inlineMax` comes back with its bytes; a larger one is written to its
 * object file (temp file, fsync, rename) unless that file exists already. The caller
 * indexes the result. `size` is what lstat said; a file that grew or shrank is read as it is.
 * With `scratch`, see storeOpenFileSync. Throws the fs error (ENOENT, EACCES, ENOSPC…) for the caller to name.
 */
export function storeFileSync(hostPath: string, size: number, dirs: BlobDirs, stamp?: FileStamp, scratch?: Buffer): FileBlob {
  const fd = fs.openSync(fsPath(hostPath), 'r');
  try {
    return storeOpenFileSync(fd, hostPath, size, dirs, stamp, scratch);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * storeFileSync of a file the caller opened (and closes). With `scratch`, a file that fits
 * is read into it, and an inline blob's value is a view of it, good until the next call.
 */
export function storeOpenFileSync(fd: number, hostPath: string, size: number, dirs: BlobDirs, stamp?: FileStamp, scratch?: Buffer): FileBlob {
  // One byte more than expected tells a file that grew since lstat from one that did not.
  const whole = Math.min(size, READ_WHOLE_MAX) + 1;
  // Read from offset 1 of a buffer of its own (not Node's shared pool): a small file's
  // bytes are then its index value once the tag is put before them, moved to the main
  // thread without a copy.
  const room = scratch && 1 + whole <= scratch.length ? scratch : Buffer.allocUnsafeSlow(1 + whole);
  const buf = room.subarray(1, 1 + whole);
  // With a stamp, a read that has all the bytes lstat saw stops there, without the read
  // that would return 0: checkUnchanged's fstat then tells a file that grew or changed.
  const n = readFull(fd, buf, stamp ? stamp.size : undefined);
  if (stamp) checkUnchanged(fd, hostPath, n, stamp);
  if (n < whole) {
    const data = buf.subarray(0, n);
    const digest = hashBytes(data); // one call: a streaming hasher per file cost ~10 µs more (an object with a finalizer)
    if (n <= dirs.inlineMax) return {digest, size: n, value: inlineBlobValueAt(room, n)};
    const staged = writeObject(dirs, digest, data);
    return staged ? {digest, size: n, staged} : {digest, size: n};
  }
  return streamObject(fd, buf, dirs.dir);
}

/**
 * One buffer reused to read the files a thread keeps as object files (over `inlineMax`, up to
 * `max` bytes; larger ones get their own): a fresh buffer per large file is fresh memory from
 * the kernel, a page fault and a zeroed page per 4 KiB read. Not for inline files, whose
 * value would be a view of it (`store` copies one out, for a file that shrank).
 */
export class ReadBuffer {
  private buf: Buffer | undefined;
  constructor(private readonly inlineMax: number, private readonly max = 8 * 1024 * 1024) {}

  /** The buffer to read a file of `size` into (storeOpenFileSync's `scratch`), or undefined: its own. */
  for(size: number): Buffer | undefined {
    const need = size + 2; // read at offset 1, one byte more than expected
    if (size <= this.inlineMax || need > this.max) return undefined;
    if ((this.buf?.length ?? 0) < need) this.buf = Buffer.allocUnsafeSlow(Math.min(this.max, Math.max(need, 2 * (this.buf?.length ?? 0), 1024 * 1024)));
    return this.buf;
  }

  /** storeFileSync through this buffer; an inline value (a file that shrank) in a buffer of its own. */
  store(hostPath: string, size: number, dirs: BlobDirs, stamp?: FileStamp): FileBlob {
    const scratch = this.for(size);
    const blob = storeFileSync(hostPath, size, dirs, stamp, scratch);
    return blob.value && scratch ? {...blob, value: new Uint8Array(blob.value)} : blob;
  }
}

/** What the walk saw of a file: a read that finds anything else read a file that changed. */
export interface FileStamp {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}

/**
 * Throws (code SOURCE_CHANGED) when a file read `n` bytes, or its size, mtime or ctime now,
 * differ from what the walk saw: it changed between the walk and the end of the read, so
 * its bytes may be torn and its metadata stale (GNU tar's "file changed as we read it").
 */
export function checkUnchanged(fd: number, hostPath: string, n: number, stamp: FileStamp): void {
  const now = fs.fstatSync(fd);
  if (n === stamp.size && now.size === stamp.size && now.mtimeMs === stamp.mtimeMs && now.ctimeMs === stamp.ctimeMs) return;
  throw Object.assign(new Error(`${hostPath} changed while it was read`), {code: 'SOURCE_CHANGED'});
}

/** Reads into `buf` until it is full, the file ends, or `enough` bytes are in. */
function readFull(fd: number, buf: Buffer, enough = buf.length): number {
  let n = 0;
  while (n < buf.length && n < enough) {
    const got = fs.readSync(fd, buf, n, buf.length - n, null);
    if (got === 0) break;
    n += got;
  }
  return n;
}

/**
 * Writes bytes to a new object file unless one exists: temp file, fsync, rename; or with
 * `stage`, only the temp file, whose path is returned.
 */
function writeObject(dirs: BlobDirs, digest: Digest, data: Uint8Array): string | undefined {
  const dest = objectPathIn(dirs.dir, digest);
  if (fs.existsSync(dest)) return undefined;
  const tmp = tmpPathIn(dirs.dir, 'blob');
  const fd = fs.openSync(tmp, 'wx', 0o444);
  try {
    writeFull(fd, data);
    if (!dirs.stage) fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, {force: true});
    throw err;
  }
  fs.closeSync(fd);
  if (dirs.stage) return tmp;
  place(tmp, dest);
  return undefined;
}

/**
 * Makes staged temp files durable, then renames each into place: one `syncfs` of the
 * store's filesystem (coreutils `sync -f`; Node has no binding) instead of one fsync per
 * file, which measured ~0.9 ms each here (docs/benchmarks.md, "import"). Where `sync -f`
 * is missing or fails, each file is fsynced. Either way, no object file is in place (nor
 * indexed) before its bytes are on disk.
 */
export function placeStaged(dir: string, staged: readonly {readonly digest: Digest; readonly staged: string}[]): void {
  placeFilesDurably(dir, staged.map(s => ({staged: s.staged, dest: objectPathIn(dir, s.digest)})));
}

/**
 * placeStaged for any destination in the store (object files, derived files): one
 * `syncfs` (or an fsync per file where `sync -f` fails), then each staged file renamed to
 * its destination, or dropped when the destination exists (same name, same bytes).
 */
export function placeFilesDurably(dir: string, staged: readonly {readonly staged: string; readonly dest: string}[]): void {
  if (staged.length === 0) return;
  const r = spawnSync('sync', ['-f', path.join(dir, 'tmp')], {stdio: 'ignore'});
  placeSynced(staged, !r.error && r.status === 0);
}

/** placeStaged of object files whose bytes a syncfs begun after their writes made durable (`synced`), or, if it failed, fsynced each now. */
export function placeStagedSynced(dir: string, staged: readonly {readonly digest: Digest; readonly staged: string}[], synced: boolean): void {
  placeSynced(staged.map(s => ({staged: s.staged, dest: objectPathIn(dir, s.digest)})), synced);
}

function placeSynced(staged: readonly {readonly staged: string; readonly dest: string}[], synced: boolean): void {
  if (!synced) {
    for (const s of staged) {
      const fd = fs.openSync(s.staged, 'r');
      try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
    }
  }
  for (const s of staged) {
    if (fs.existsSync(s.dest)) fs.rmSync(s.staged, {force: true}); // two files of one import with the same bytes
    else place(s.staged, s.dest);
  }
}

/** A file larger than READ_WHOLE_MAX: hashed while copied to a temp file, kept only if new. */
function streamObject(fd: number, head: Buffer, dir: string): FileBlob {
  const hasher = createHasher().update(head);
  const tmp = tmpPathIn(dir, 'blob');
  const out = fs.openSync(tmp, 'wx', 0o444);
  let size = head.length;
  let placed = false;
  try {
    writeFull(out, head);
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const n = readFull(fd, buf);
      if (n === 0) break;
      const chunk = buf.subarray(0, n);
      hasher.update(chunk);
      writeFull(out, chunk);
      size += n;
    }
    const digest = hasher.digest();
    const dest = objectPathIn(dir, digest);
    if (!fs.existsSync(dest)) { // the bytes are not fsynced unless they are kept
      fs.fsyncSync(out);
      place(tmp, dest);
      placed = true;
    }
    return {digest, size};
  } finally {
    fs.closeSync(out);
    if (!placed) fs.rmSync(tmp, {force: true});
  }
}

function writeFull(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
}

/** Renames into place, making the fan-out directory on first use (no cache: a store may be deleted and made again). */
function place(tmp: string, dest: string): void {
  try {
    fs.renameSync(tmp, dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !fs.existsSync(tmp)) throw err;
    fs.mkdirSync(path.dirname(dest), {recursive: true});
    fs.renameSync(tmp, dest);
  }
}
