import * as path from 'node:path';
import {closeSync, constants, fstatSync, rmSync} from 'node:fs';
import {type Dirent, type Stats, lstatSync, openSync, readdirSync, readlinkSync} from '../host/hostFs.js';
import {readXattrsSync} from '../host/hostXattrs.js';
import {StoreError, sourceError} from '../errors.js';
import {PLACEHOLDER_DIGEST, TreeEntries, type TreeEntry, type Xattrs, compareNames} from '../objects/tree.js';
import {type BlobDirs, READ_WHOLE_MAX, storeOpenFileSync} from '../objects/storeFileSync.js';
import {OPAQUE_MARKER, WHITEOUT_PREFIX} from '../objects/whiteoutNames.js';
import {type UpperForm, deviceNumbers} from '../containers/upperForm.js';
import {keptXattrs, recordedOwnerIn} from './layerXattrs.js';

/**
 * One directory of a directory import, listed and described by whoever lists it (a
 * hashing thread, or the importing thread for a small import): its names in the walk's
 * order, each entry's lstat and xattrs, and the entries already encoded as its tree will
 * hold them (objects/tree.ts, `TreeEntries`), with the blobs of its first regular files,
 * read and hashed right after their lstat. Packed in a few values, not an object per
 * entry: what crosses from a thread is a string of names, one Float64Array of numbers,
 * the encoded entries, a string of digests and the small files' values (moved, not
 * copied). The importing thread then writes in the references it learns later (a
 * subdirectory's tree, a file hashed elsewhere), indexes the blobs and puts a head before
 * the entries: the walk's syscalls, `Stats`, xattr calls and the encoding of every entry
 * were most of that thread's time (docs/benchmarks.md).
 */
export interface Listing {
  /** Each entry's name, ended by a NUL (no name holds one), in the walk's order. */
  readonly names: string;
  /** FIELDS numbers per entry, in the walk's order (the offsets below). */
  readonly numbers: Float64Array;
  /**
   * Every entry encoded, in the tree's order (by name); references not known here (a
   * directory's tree, a file not hashed here) are PLACEHOLDER_DIGEST.
   */
  readonly entries: Uint8Array;
  /** 64 hex digits per hashed file, in entry order. */
  readonly digests: string;
  /**
   * The index values (`00` + bytes) of hashed inline files one after another, in entry
   * order (each is 1 + its size long), in one buffer of its own: one allocation and one
   * transfer per listing, not one per file.
   */
  readonly values: Uint8Array;
  /** The staged temp files of hashed files kept as object files, in entry order (not yet durable nor in place). */
  readonly staged: string[];
  /** The kept xattrs of the entries that have any: [entry index, xattrs]. */
  readonly xattrs: [number, Record<string, Uint8Array>][];
  /** The directory holds the opaque marker `.wh..wh..opq` (with `whiteoutNames`). */
  readonly opaqueMarker: boolean;
  /** Set when listing stopped at a failure: the import fails with it. */
  readonly error?: ListingError;
}

/** A failure as it crosses from a thread: a StoreError by its code, or an fs error with its fields. */
export interface ListingError {
  readonly store: boolean;
  readonly code?: string;
  readonly syscall?: string;
  readonly path?: string;
  readonly message: string;
}

/** What the lister needs to know of the import, plainly (it crosses to the threads). */
export interface ListingSettings {
  readonly whiteoutNames: boolean;
  /**
   * Regular files over this size are not read by the listing (they go to the importing
   * thread, which hashes them while it would otherwise wait: importDirectory.ts).
   */
  readonly readMax?: number;
  /** The store's upper form (a container's writable layer) when importing one. */
  readonly upper?: UpperForm;
}

/**
 * Regular files a listing reads and hashes itself, at most, and their bytes: the rest go
 * to the pool in batches, spread over every thread. The bytes bound what a listing holds
 * in memory (its small files' values) while it waits for the walk (ListingQueue).
 */
export const LISTING_HASH_FILES = 256;
export const LISTING_HASH_BYTES = 1024 * 1024;

export const FIELDS = 16;
/** Per entry: its kind (K_*); mode, owner, mtime (seconds); a file's size, stamp, links and inode. */
export const F_KIND = 0, F_MODE = 1, F_UID = 2, F_GID = 3, F_MTIME = 4, F_SIZE = 5, F_MTIME_MS = 6, F_CTIME_MS = 7,
  F_NLINK = 8, F_DEV = 9, F_INO = 10;
/** Per entry: FLAG_*; BLOB_*; where its bytes start and end in `entries`, and where its reference lies. */
export const F_FLAGS = 11, F_BLOB = 12, F_START = 13, F_END = 14, F_REF = 15;
export const K_FILE = 1, K_DIR = 2, K_SYMLINK = 3, K_WHITEOUT = 5, K_CHAR = 6, K_BLOCK = 7, K_FIFO = 8;
/** F_FLAGS: the entry (a directory) is opaque by its overlay xattr. */
export const FLAG_OPAQUE = 1;
/** F_BLOB: not hashed here; its inline value is next in `values`; an object file in place; a staged file in `staged`. */
export const BLOB_NONE = 0, BLOB_INLINE = 1, BLOB_PLACED = 2, BLOB_STAGED = 3;

/**
 * Lists and describes `dir` (a host path without a trailing slash, but `/`). `layerPath` is
 * its path inside the layer, for messages. With `dirs`, hashes regular files (one link,
 * up to READ_WHOLE_MAX) until LISTING_HASH_FILES or LISTING_HASH_BYTES. Throws what the
 * walk throws: SOURCE_MISSING and fs errors naming the path, WHITEOUT_NAME,
 * UNSUPPORTED_ENTRY, NO_SPACE, SOURCE_CHANGED.
 */
export function describeDirectory(dir: string, layerPath: string, settings: ListingSettings, dirs?: BlobDirs): Listing {
  const {upper, whiteoutNames} = settings;
  let dirents: Dirent[];
  try {
    dirents = readdirSync(dir, {withFileTypes: true});
  } catch (err) {
    throw sourceError(err, dir);
  }
  // A whiteout and an entry of the same name: the later one listed wins (as a tar's later member does).
  const winner = new Map<string, Dirent>();
  let opaqueMarker = false;
  for (const d of dirents) {
    if (!d.name.startsWith(WHITEOUT_PREFIX)) {
      winner.set(d.name, d);
      continue;
    }
    if (upper)
      throw new StoreError('WHITEOUT_NAME', `${layerPath === '/' ? '' : layerPath}/${d.name}: a file named ${d.name} cannot be put in a layer (in an OCI layer, names starting with ${WHITEOUT_PREFIX} mark whiteouts); rename or remove it first`);
    if (!whiteoutNames)
      throw new StoreError('UNSUPPORTED_ENTRY', `${path.join(dir, d.name)}: names starting with ${WHITEOUT_PREFIX} are whiteout markers and cannot be stored as files`);
    if (d.name === OPAQUE_MARKER) opaqueMarker = true;
    else winner.set(d.name.slice(WHITEOUT_PREFIX.length), d);
  }
  const order = [...winner].map(([name, d]) => ({name, d, key: d.isDirectory() ? `${name}/` : name}));
  order.sort((a, b) => compareNames(a.key, b.key));

  const count = order.length;
  const numbers = new Float64Array(count * FIELDS);
  const described: TreeEntry[] = new Array(count);
  const values = new ValueBytes(), staged: string[] = [], xattrs: [number, Record<string, Uint8Array>][] = [];
  let names = '', digests = '';
  let hashedFiles = 0, hashedBytes = 0;
  const prefix = dir === '/' ? '' : dir;
  try {
    for (let i = 0; i < count; i++) {
      const {name, d} = order[i]!;
      names += `${name}\0`;
      if (d.name === name) {
        described[i] = describeEntry(i, name, d);
      } else { // a whiteout file
        numbers[i * FIELDS + F_KIND] = K_WHITEOUT;
        described[i] = {name, kind: 'whiteout'};
      }
    }
  } catch (err) {
    for (const s of staged) rmSync(s, {force: true}); // not handed to anyone: the import fails
    throw err;
  }
  // The tree's order is by name alone (a directory's name without the walk's `/`).
  const byName = Array.from({length: count}, (_, i) => i);
  byName.sort((a, b) => compareNames(order[a]!.name, order[b]!.name));
  const w = new TreeEntries(count);
  for (const i of byName) {
    numbers[i * FIELDS + F_START] = w.offset;
    numbers[i * FIELDS + F_REF] = w.add(described[i]!);
    numbers[i * FIELDS + F_END] = w.offset;
  }
  return {names, numbers, entries: w.done(), digests, values: values.done(), staged, xattrs, opaqueMarker};

  function describeEntry(i: number, name: string, d: Dirent): TreeEntry {
    const at = i * FIELDS;
    const hostPath = `${prefix}/${name}`;
    // A regular file this listing will read is opened first, and its fstat stands for the
    // lstat (O_NOFOLLOW: the entry itself), one call less per file; anything else, or a
    // file that cannot be opened (its read in the pool then says why), is lstat'ed.
    const fd = dirs && d.isFile() && hashedFiles < LISTING_HASH_FILES && hashedBytes < LISTING_HASH_BYTES ? openEntry(hostPath) : undefined;
    try {
      return describeStat(at, i, name, hostPath, fd);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  function describeStat(at: number, i: number, name: string, hostPath: string, fd: number | undefined): TreeEntry {
    let st: Stats | undefined;
    if (fd !== undefined) {
      st = fstatSync(fd);
      if (!st.isFile()) st = undefined; // it changed since readdir: as lstat sees it now
    }
    if (!st) {
      fd = undefined;
      try {
        st = lstatSync(hostPath);
      } catch (err) {
        throw sourceError(err, hostPath);
      }
    }
    if (upper?.isWhiteout(st)) {
      numbers[at + F_KIND] = K_WHITEOUT;
      return {name, kind: 'whiteout'};
    }
    let all: Xattrs | undefined;
    try {
      all = readXattrsSync(hostPath);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw sourceError(err, hostPath);
    }
    const kept = all && keptXattrs(all, upper);
    if (kept) xattrs.push([i, kept]);
    const owner = upper ? recordedOwnerIn(all, st) : st;
    const mode = st.mode & 0o7777, uid = owner.uid, gid = owner.gid, mtime = Math.floor(st.mtimeMs / 1000);
    numbers[at + F_MODE] = mode;
    numbers[at + F_UID] = uid;
    numbers[at + F_GID] = gid;
    numbers[at + F_MTIME] = mtime;
    if (st.isFile()) {
      numbers[at + F_KIND] = K_FILE;
      numbers[at + F_SIZE] = st.size;
      numbers[at + F_MTIME_MS] = st.mtimeMs;
      numbers[at + F_CTIME_MS] = st.ctimeMs;
      numbers[at + F_NLINK] = st.nlink;
      numbers[at + F_DEV] = st.dev;
      numbers[at + F_INO] = st.ino;
      let blob = PLACEHOLDER_DIGEST;
      if (dirs && fd !== undefined && st.nlink === 1 && st.size <= (settings.readMax ?? READ_WHOLE_MAX)) {
        hashedFiles++;
        hashedBytes += st.size;
        const stamp = {size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs};
        let stored;
        try {
          stored = storeOpenFileSync(fd, hostPath, st.size, dirs, stamp, scratch);
        } catch (err) {
          throw fileError(err, hostPath);
        }
        blob = stored.digest;
        digests += blob.slice(3);
        if (stored.value) {
          numbers[at + F_BLOB] = BLOB_INLINE;
          values.add(stored.value);
        } else if (stored.staged !== undefined) {
          numbers[at + F_BLOB] = BLOB_STAGED;
          staged.push(stored.staged);
        } else {
          numbers[at + F_BLOB] = BLOB_PLACED;
        }
      }
      // Object literals of one shape, not spreads: a spread's property-by-property copy was a tenth of a thread's time.
      return kept ? {mode, uid, gid, mtime, xattrs: kept, name, kind: 'file', size: st.size, blob} : {mode, uid, gid, mtime, name, kind: 'file', size: st.size, blob};
    }
    if (st.isDirectory()) {
      numbers[at + F_KIND] = K_DIR;
      if (upper && all?.[`${upper.xattrPrefix}opaque`]?.toString('latin1') === 'y') numbers[at + F_FLAGS] = FLAG_OPAQUE;
      return {name, kind: 'dir', tree: PLACEHOLDER_DIGEST};
    }
    if (st.isSymbolicLink()) {
      numbers[at + F_KIND] = K_SYMLINK;
      let target: string;
      try {
        target = readlinkSync(hostPath);
      } catch (err) {
        throw sourceError(err, hostPath);
      }
      return kept ? {mode, uid, gid, mtime, xattrs: kept, name, kind: 'symlink', target} : {mode, uid, gid, mtime, name, kind: 'symlink', target};
    }
    if (st.isCharacterDevice() || st.isBlockDevice()) {
      const kind = st.isCharacterDevice() ? 'char' : 'block';
      numbers[at + F_KIND] = kind === 'char' ? K_CHAR : K_BLOCK;
      const {devmajor, devminor} = deviceNumbers(st.rdev);
      return {mode, uid, gid, mtime, ...(kept ? {xattrs: kept} : {}), name, kind, devmajor, devminor};
    }
    if (st.isFIFO()) {
      numbers[at + F_KIND] = K_FIFO;
      return {mode, uid, gid, mtime, ...(kept ? {xattrs: kept} : {}), name, kind: 'fifo'};
    }
    const what = st.isSocket() ? 'a socket' : 'of an unknown type';
    throw new StoreError('UNSUPPORTED_ENTRY', `${hostPath} is ${what}, which a layer cannot hold`);
  }
}

/**
 * A file that changed between the walk and the end of its read is refused rather than
 * stored torn (GNU tar's "file changed as we read it"); the import fails and removes what
 * it wrote. Retrying could not promise a consistent tree either: import a quiet source.
 */
export function changedError(hostPath: string): StoreError {
  return new StoreError('SOURCE_CHANGED', `${hostPath} changed while strata read it; import a directory that nothing is writing to`);
}

/** A failure to read or store a regular file, named as the import names it. */
export function fileError(err: unknown, hostPath: string): Error {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOSPC') return new StoreError('NO_SPACE', `the disk is full while storing ${hostPath}`, {cause: e});
  if (e.code === 'SOURCE_CHANGED') return changedError(hostPath);
  return sourceError(e, hostPath);
}

/** Where a listing reads its small files (one per thread, reused): their values are copied out into `ValueBytes`. */
const scratch = Buffer.allocUnsafeSlow(64 * 1024);

/** Where a listing gathers its small files' values (one per thread, reused, grown to at most about LISTING_HASH_BYTES). */
let gathered = Buffer.allocUnsafeSlow(256 * 1024);

/** Values appended one after another, handed out in one buffer of their own (`done`). */
class ValueBytes {
  private at = 0;
  add(v: Uint8Array): void {
    if (this.at + v.length > gathered.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(2 * gathered.length, this.at + v.length));
      gathered.copy(grown, 0, 0, this.at);
      gathered = grown;
    }
    gathered.set(v, this.at);
    this.at += v.length;
  }
  /**
   * The values in a buffer of exactly their size, not Node's shared pool (so it can be moved):
   * the index keeps a listing's buffer until the last of its values is written.
   */
  done(): Uint8Array {
    const out = Buffer.allocUnsafeSlow(this.at);
    gathered.copy(out, 0, 0, this.at);
    return out;
  }
}

/** O_NOFOLLOW: the entry, never what a symlink that took its place names; O_NONBLOCK: a fifo that did never blocks the open. */
const OPEN_ENTRY = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Opens a directory entry that readdir says is a regular file; undefined when it cannot be (lstat then tells what it is). */
function openEntry(hostPath: string): number | undefined {
  try {
    return openSync(hostPath, OPEN_ENTRY);
  } catch {
    return undefined;
  }
}

/** A listing that holds only a failure. */
export function failedListing(error: ListingError): Listing {
  return {names: '', numbers: new Float64Array(0), entries: new Uint8Array(0), digests: '', values: new Uint8Array(0), staged: [], xattrs: [], opaqueMarker: false, error};
}

/** A failure as data, to cross from a thread (`toError` makes it an Error again). */
export function errorData(err: unknown): ListingError {
  const e = err as NodeJS.ErrnoException;
  if (err instanceof StoreError) return {store: true, code: err.code, message: err.message};
  return {store: false, ...(e.code ? {code: e.code} : {}), ...(e.syscall ? {syscall: e.syscall} : {}), ...(e.path ? {path: e.path} : {}), message: String(e.message)};
}

/** `errorData` back as an Error: a StoreError with its code, or an Error with the fs fields. */
export function toError(data: ListingError): Error {
  if (data.store) return new StoreError(data.code as StoreError['code'], data.message);
  return Object.assign(new Error(data.message), data.code ? {code: data.code} : {}, data.syscall ? {syscall: data.syscall} : {}, data.path ? {path: data.path} : {});
}
