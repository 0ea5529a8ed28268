import * as fs from 'node:fs';
import {type Digest, createHasher, hashBytes} from '../objects/digest.js';
import {fsPath} from '../objects/names.js';
import {objectPathIn} from '../objects/storeFileSync.js';
import type {Xattrs} from '../objects/tree.js';
import {damagedBlob} from '../objects/verifiedRead.js';
import {writeXattrsSync} from './hostXattrs.js';

/**
 * One file or symlink to write on the host, with its metadata: what `HostWriter` sends to
 * its threads. A file's bytes are one of: a blob's inline bytes (`inline`), a blob's
 * object file (`object`: its size), both checked against `blob` before the file is left
 * in place; or a host file copied as it is (`hostFile`, a container's upper).
 */
export interface HostEntryJob {
  readonly kind: 'file' | 'symlink';
  /** The host path to create (names as strata keeps them: hostFs's mapping). */
  readonly dest: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
  /** Set after the owner (chown clears file capabilities); already filtered by the caller. */
  readonly xattrs?: Xattrs;
  readonly blob?: Digest;
  readonly inline?: Uint8Array;
  readonly object?: number;
  readonly hostFile?: string;
  readonly target?: string;
  /** Bytes of a file, for progress. */
  readonly size: number;
}

/** What every job of one writer shares: the store (for object paths) and whether owners are set (root). */
export interface HostWriteSettings {
  readonly storeDir: string;
  readonly owners: boolean;
}

/** A failure as it crosses threads: a store code (damage) or the fields of Node's fs error. */
export interface HostWriteFailure {
  readonly storeCode?: 'OBJECT_CORRUPT' | 'OBJECT_MISSING';
  readonly code?: string;
  readonly syscall?: string;
  readonly path?: string;
  readonly dest?: string;
  readonly message: string;
}

const CHUNK = 1024 * 1024;
let chunk: Buffer | undefined;

/**
 * Writes one entry with synchronous calls (meant for a writing thread, as import's hashing
 * threads: the libuv round trip of an async call costs more than the call). Owner before
 * mode (chown clears setuid and setgid), xattrs after the owner (it clears file
 * capabilities), the mtime last. Damaged bytes are never left behind: inline bytes are
 * checked before they are written, a copied object file is hashed after the copy (what was
 * written is what is checked) and removed when it does not match. Throws OBJECT_CORRUPT as
 * a StoreError from `damagedBlob`, OBJECT_MISSING as an ENOENT on the object file, other
 * fs errors as they are.
 */
export function writeHostEntry(job: HostEntryJob, settings: HostWriteSettings): void {
  const dest = fsPath(job.dest);
  if (job.kind === 'symlink') {
    fs.symlinkSync(fsPath(job.target!), dest);
    if (settings.owners) fs.lchownSync(dest, job.uid, job.gid);
    if (job.xattrs) writeXattrsSync(job.dest, job.xattrs);
    fs.lutimesSync(dest, job.mtime, job.mtime);
    return;
  }
  if (job.inline) {
    const data = job.inline;
    if (data.length !== job.size) throw damagedBlob(job.blob!, `it has ${data.length} bytes, the index says ${job.size}`);
    if (hashBytes(data) !== job.blob) throw damagedBlob(job.blob!, 'its bytes do not hash to its name');
    const fd = fs.openSync(dest, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    try {
      let at = 0;
      while (at < data.length) at += fs.writeSync(fd, data, at, data.length - at);
      if (settings.owners) fs.fchownSync(fd, job.uid, job.gid);
      fs.fchmodSync(fd, job.mode);
      if (job.xattrs) writeXattrsSync(job.dest, job.xattrs);
      fs.futimesSync(fd, job.mtime, job.mtime);
    } finally {
      fs.closeSync(fd);
    }
    return;
  }
  if (job.object !== undefined) {
    fs.copyFileSync(objectPathIn(settings.storeDir, job.blob!), dest, fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
    try {
      checkCopy(dest, job.blob!, job.object);
    } catch (err) {
      fs.rmSync(dest, {force: true});
      throw err;
    }
  } else {
    fs.copyFileSync(fsPath(job.hostFile!), dest, fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
  }
  if (settings.owners) fs.lchownSync(dest, job.uid, job.gid);
  fs.chmodSync(dest, job.mode);
  if (job.xattrs) writeXattrsSync(job.dest, job.xattrs);
  fs.utimesSync(dest, job.mtime, job.mtime);
}

/** Hashes the copy: it must be the blob, byte for byte. */
function checkCopy(file: string | Buffer, d: Digest, size: number): void {
  const fd = fs.openSync(file, 'r');
  try {
    const hasher = createHasher();
    const buf = (chunk ??= Buffer.allocUnsafe(CHUNK));
    let total = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hasher.update(buf.subarray(0, n));
      total += n;
    }
    if (total !== size) throw damagedBlob(d, `its object file has ${total} bytes, the index says ${size}`);
    if (hasher.digest() !== d) throw damagedBlob(d, 'its object file does not hash to its name');
  } finally {
    fs.closeSync(fd);
  }
}

/** A failure in a form that crosses threads (a plain object). */
export function toFailure(err: unknown, settings: HostWriteSettings, job: HostEntryJob): HostWriteFailure {
  const e = err as NodeJS.ErrnoException & {code?: string; dest?: unknown};
  if (e.code === 'OBJECT_CORRUPT') return {storeCode: 'OBJECT_CORRUPT', message: e.message};
  if (e.code === 'ENOENT' && job.object !== undefined && !fs.existsSync(objectPathIn(settings.storeDir, job.blob!)))
    return {storeCode: 'OBJECT_MISSING', message: `blob ${job.blob} is indexed but its object file is missing`};
  return {
    ...(e.code ? {code: e.code} : {}), ...(e.syscall ? {syscall: e.syscall} : {}),
    ...(typeof e.path === 'string' ? {path: e.path} : {}), ...(typeof e.dest === 'string' ? {dest: e.dest} : {}), message: e.message,
  };
}
