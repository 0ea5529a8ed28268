import {type Stats, statSync} from '../host/hostFs.js';
import {layerXattrs} from './layerXattrs.js';
import * as path from 'node:path';
import type {Digest} from '../objects/digest.js';
import {StoreError, sourceError} from '../errors.js';
import {FilePool} from './FilePool.js';
import {ListingQueue} from './ListingQueue.js';
import {type FileStamp, READ_WHOLE_MAX} from '../objects/storeFileSync.js';
import {BLOB_INLINE, BLOB_NONE, BLOB_STAGED, F_BLOB, F_CTIME_MS, F_DEV, F_END, F_FLAGS, F_GID, F_INO, F_KIND, F_MODE, F_MTIME,
  F_MTIME_MS, F_NLINK, F_REF, F_SIZE, F_START, F_UID, FIELDS, FLAG_OPAQUE, K_DIR, K_FILE, type Listing, type ListingSettings, changedError,
  describeDirectory, fileError, toError} from './describeDirectory.js';
import {LayerBuilder} from './LayerBuilder.js';
import {LATE_TIER_UP_FILES} from './lateTierUp.js';
import {type ImportOptions, type ImportResult, finishImport, finishLayer} from './importResult.js';
import {INLINE_MAX, type Store} from '../objects/Store.js';
import {type Meta, TreeEntries, type TreeEntry, type Xattrs, encodeTreeHead} from '../objects/tree.js';
import type {UpperForm} from '../containers/upperForm.js';
import {recordedOwner} from '../containers/ownerRecord.js';

type HardlinkEntry = Extract<TreeEntry, {kind: 'hardlink'}>;

export interface DirectoryImportOptions extends ImportOptions {
  /**
   * Read `.wh.<name>` files as whiteouts and `.wh..wh..opq` as opaque markers (the AUFS
   * and OCI convention, which container writable layers use). Off: such names are refused.
   */
  readonly whiteoutNames?: boolean;
  /**
   * Read the directory as a container's writable layer in this form (whiteouts, opaque
   * directories, device nodes made in the container, owners recorded where strata could
   * not chown: `recordedOwner`). A `.wh.` name in it cannot be
   * expressed in a layer: refused (WHITEOUT_NAME), naming the path inside the layer.
   */
  readonly upper?: UpperForm;
  /** Treat a directory that is missing as an empty layer (a container that changed nothing). */
  readonly allowMissing?: boolean;
}

/** A regular file on its way to the hashing threads, and where its blob goes in its directory's tree once stored. */
interface FileJob {
  readonly path: string;
  readonly size: number;
  readonly stamp: FileStamp;
  readonly dir: PendingDir;
  /** Where the file's entry in `dir.entries` takes its blob's digest. */
  readonly ref: number;
  /** Set when other paths of the tree link to this file (it is the first of them in byte order). */
  readonly group?: LinkGroup;
}

/**
 * A directory whose tree is not written yet: the walk is in it or below it, or some of
 * its files are still being stored. Its entries are its listing's, encoded; the
 * references not known then (subdirectories' trees, files stored since) are written into
 * them as they are learnt, and `waiting` counts those still missing, plus one while the
 * walk is inside. At zero its tree is written and only the digest goes up.
 */
interface PendingDir {
  readonly meta: Meta;
  opaque: boolean;
  entries: Buffer;
  count: number;
  /** Entries encoded here in place of the listing's bytes [start, end): the later paths of hardlinked files. */
  replaced?: {start: number; end: number; bytes: Buffer}[];
  waiting: number;
  readonly done: (tree: Digest) => void;
}

/** Paths of the tree that share one inode: the first in byte order holds the content. */
interface LinkGroup {
  readonly target: string;
  blob?: {digest: Digest; size: number};
  readonly waiters: ((blob: {digest: Digest; size: number}) => void)[];
}

/**
 * Imports a host directory as a layer: regular files, directories (empty ones too),
 * symlinks, hardlinks (within the directory), fifos and device nodes; modes, owners,
 * mtimes (seconds), xattrs (`xattrsAt` says which). Names are bytes (objects/names.ts).
 * Sockets are refused (UNSUPPORTED_ENTRY; a tar cannot hold one either), as is a missing
 * or unreadable path (SOURCE_MISSING). Each file is read once. Nothing becomes visible unless the whole
 * import succeeds: the layer record is the commit point.
 *
 * Memory does not grow with the tree: the walk hands files to the hashing threads as it
 * meets them and waits while they have enough queued, and each directory's tree is
 * written as soon as its last entry is known (bottom-up), leaving only its digest in its
 * parent. What is kept is the directories on the walk's path and those whose files are
 * in flight, and one record per hardlinked file.
 */
export async function importDirectory(store: Store, dir: string, options: DirectoryImportOptions = {}): Promise<ImportResult> {
  // A failed import removes what it wrote (a full disk above all), not only its record.
  return store.undoOnFailure(() => readDirectory(store, dir, options));
}

async function readDirectory(store: Store, dir: string, options: DirectoryImportOptions): Promise<ImportResult> {
  const before = store.writeCounters();
  let rootStat: Stats;
  try {
    rootStat = statSync(dir); // the source may be a symlink to the directory, as `tar -C` allows
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && options.allowMissing) return finishImport(store, new LayerBuilder(), options, before);
    throw sourceError(err, dir);
  }
  if (!rootStat.isDirectory()) throw new StoreError('SOURCE_MISSING', `${dir} is not a directory`);
  const walk = new DirectoryWalk(store, options);
  try {
    const written = await walk.run(dir, rootStat);
    return await finishLayer(store, written, {...options, source: options.source ?? path.resolve(dir)}, before);
  } finally {
    walk.done();
  }
}

/** Files handled by the pool's threads; bigger ones stream through this thread (reading, hashing and writing overlap there). */
const HUGE_AT_ONCE = 2;
/**
 * Listings asked of each thread ahead of the walk: each holds at most LISTING_HASH_BYTES of
 * small files' bytes (1 MiB; with 4 ahead and 2 MiB, a thread that listed in ~1 ms waited for the walk).
 */
const LISTINGS_AHEAD_PER_THREAD = 8;

/**
 * One directory import: a depth-first walk in byte order of the full paths (a directory's
 * names sorted as if each directory's ended in `/`), so the first path of a hardlinked
 * file that the walk meets is the first in byte order, which holds the content: equal
 * trees give equal layers, whatever order the filesystem lists them in. Once the hashing
 * threads run, they list the directories ahead of the walk, lstat and read the xattrs of
 * every entry and read and hash the files (describeDirectory.ts): the walk itself only
 * assembles the trees and hands the blobs to the index.
 */
class DirectoryWalk {
  private readonly pool: FilePool<FileJob>;
  private readonly listings: ListingQueue;
  private readonly settings: ListingSettings;
  private readonly groups = new Map<string, LinkGroup>();
  private readonly huge: FileJob[] = [];
  private hugeRunning = 0;
  /** One per file over READ_WHOLE_MAX (a few: each is over 64 MiB). */
  private readonly hugeDone: Promise<void>[] = [];
  private failed: unknown;
  private stats = {entries: 0, bytes: 0};
  /** The layer's inline blobs (digest -> size), for its pack: so that no tree is read again to find them (layerPacks.ts). */
  private readonly inlineBlobs = new Map<Digest, number>();
  private files = 0;
  private stored = 0;
  private storedBytes = 0;
  private walked = false;

  constructor(private readonly store: Store, private readonly options: DirectoryImportOptions) {
    const {upper} = options;
    this.settings = {whiteoutNames: options.whiteoutNames ?? false, ...(upper ? {upper} : {})};
    const dirs = store.blobDirs();
    this.pool = new FilePool<FileJob>({
      dirs,
      listing: {whiteoutNames: this.settings.whiteoutNames, readMax: dirs.inlineMax, ...(upper ? {upper: {storeDir: store.dir, userxattr: upper.userxattr}} : {})},
    }, (f, err) => fileError(Object.assign(new Error(err.message), err), f.path), (job, blob) => {
      this.store.indexFileBlob(blob); // an inline blob's bytes wait only in the index's pending batch
      this.fileStored(job, blob);
    });
    this.listings = new ListingQueue(this.pool, LISTINGS_AHEAD_PER_THREAD);
  }

  /** After the layer is stored (its pack included): V8 tiers up as usual again (lateTierUp.ts). */
  done(): void {
    this.pool.tierUpAsUsual();
  }

  private countFile(): void {
    if (++this.files === LATE_TIER_UP_FILES) this.pool.tierUpAsUsual(); // the optimised code pays for itself from here
  }

  async run(dir: string, rootStat: Stats): Promise<{root: Digest; entries: number; bytes: number; inlineBlobs: ReadonlyMap<Digest, number>}> {
    let root: Digest | undefined;
    const top = this.pendingDir({...metaOf(rootStat, dir, this.options), ...xattrsAt(dir, this.options)}, this.options.upper?.isOpaque(dir) ?? false, d => { root = d; });
    try {
      await this.walk(hostDirOf(dir), '/', top);
      this.walked = true;
      await Promise.all([this.pool.finish(), this.hugeFinished()]);
    } catch (err) {
      this.failed ??= err;
    }
    if (this.failed) {
      await this.pool.abort();
      await Promise.allSettled(this.hugeDone);
      throw this.failed;
    }
    if (root === undefined) throw new Error('assertion failed: the directory import ended with directories unwritten');
    return {root, ...this.stats, inlineBlobs: this.inlineBlobs};
  }

  /**
   * Walks a directory from its listing, which a hashing thread made ahead of the walk or,
   * before the threads run, this thread makes now with synchronous calls (each async fs
   * call costs a libuv round trip several times the syscall: docs/benchmarks.md, "import").
   * Waits only for a listing and for room in the hashing pool.
   */
  private async walk(hostDir: string, layerPath: string, dir: PendingDir): Promise<void> {
    const listing = await this.helpWhile(this.listings.take(hostDir, layerPath, () => this.listHere(hostDir, layerPath)));
    if (listing.error) throw toError(listing.error);
    if (listing.opaqueMarker) dir.opaque = true;
    const {numbers, names, digests, values, staged, xattrs} = listing;
    dir.entries = Buffer.from(listing.entries.buffer, listing.entries.byteOffset, listing.entries.byteLength);
    dir.count = numbers.length / FIELDS;
    this.stats.entries += dir.count;
    const hostPrefix = hostDir === '/' ? '' : hostDir;
    const layerPrefix = layerPath === '/' ? '' : layerPath;
    let nameAt = 0, digestAt = 0, valueAt = 0, stagedAt = 0, xattrsAt = 0;
    for (let i = 0, at = 0; at < numbers.length; i++, at += FIELDS) {
      if (this.pool.error) throw this.pool.error;
      if (this.failed) throw this.failed;
      const nameEnd = names.indexOf('\0', nameAt);
      const name = names.slice(nameAt, nameEnd);
      nameAt = nameEnd + 1;
      let x: Record<string, Buffer> | undefined;
      if (xattrsAt < xattrs.length && xattrs[xattrsAt]![0] === i) {
        x = {};
        for (const [n, v] of Object.entries(xattrs[xattrsAt++]![1])) x[n] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      }
      const kind = numbers[at + F_KIND];
      if (kind === K_FILE) {
        const size = numbers[at + F_SIZE]!;
        const stamp: FileStamp = {size, mtimeMs: numbers[at + F_MTIME_MS]!, ctimeMs: numbers[at + F_CTIME_MS]!};
        const hostPath = `${hostPrefix}/${name}`;
        const ref = numbers[at + F_REF]!;
        dir.waiting++;
        const how = numbers[at + F_BLOB];
        if (how === BLOB_NONE) {
          const meta = metaAt(numbers, at, x);
          this.addFile({path: hostPath, size, stamp, dir, ref}, numbers[at + F_NLINK]!, `${numbers[at + F_DEV]}:${numbers[at + F_INO]}`,
            `${layerPrefix}/${name}`, () => ({...meta, name, kind: 'hardlink' as const}), numbers[at + F_START]!, numbers[at + F_END]!);
        } else {
          // Read and hashed by the thread that listed the directory (which checked its size and stamp).
          const digest = `b3:${digests.slice(digestAt, digestAt += 64)}` as Digest;
          this.countFile();
          this.stats.bytes += size;
          if (how === BLOB_STAGED) {
            this.pool.adopt({path: hostPath, size, stamp, dir, ref}, {digest, size, staged: staged[stagedAt++]!}); // indexed once durable and in place
          } else {
            let value: Uint8Array | undefined;
            if (how === BLOB_INLINE) value = values.subarray(valueAt, valueAt += 1 + size);
            this.store.indexFileBlob(value ? {digest, size, value} : {digest, size});
            this.blobKnown(dir, undefined, digest, size); // the listing's entry holds its digest already
          }
        }
        const wait = this.pool.room();
        if (wait) await this.helpWhile(wait);
      } else if (kind === K_DIR) {
        const ref = numbers[at + F_REF]!;
        dir.waiting++;
        const sub = this.pendingDir(metaAt(numbers, at, x), (numbers[at + F_FLAGS]! & FLAG_OPAQUE) !== 0, tree => this.fill(dir, ref, tree));
        await this.walk(`${hostPrefix}/${name}`, `${layerPrefix}/${name}`, sub);
      }
      // Every other kind is whole in the listing's bytes.
    }
    // Its staged files are the pool's now (adopted); until here, a failure removes them all.
    this.pool.claim(listing);
    this.release(dir); // the walk has left it
  }

  /**
   * Lists a directory in this thread: before the threads are started, without reading its
   * files (they go to the pool, which counts them to decide on threads); while they start,
   * reading and hashing its first files as a thread's listing would (its staged files are
   * the pool's to remove on failure until the walk has them).
   */
  private listHere(hostDir: string, layerPath: string): Listing {
    if (this.pool.threads === 0) return describeDirectory(hostDir, layerPath, this.settings);
    const listing = describeDirectory(hostDir, layerPath, {...this.settings, readMax: this.store.blobDirs().inlineMax}, this.pool.stagingDirs);
    if (listing.staged.length > 0) this.pool.track(listing);
    return listing;
  }

  /**
   * A file the listing did not hash: to the pool (or, over READ_WHOLE_MAX, through this
   * thread), or, when it is a later path of an inode met before (`inode` is `dev:ino`), a
   * hardlink to the first, encoded here in place of its listing's bytes [start, end).
   */
  private addFile(job: FileJob, nlink: number, inode: string, layerPath: string, hardlink: () => Omit<HardlinkEntry, 'size' | 'blob' | 'target'>, start: number, end: number): void {
    let group: LinkGroup | undefined;
    if (nlink > 1) {
      const first = this.groups.get(inode);
      if (first) {
        // A later path of a file met before: a hardlink to it, with its blob and size.
        const {dir} = job;
        const link = (blob: {digest: Digest; size: number}) => {
          const w = new TreeEntries(1);
          w.add({...hardlink(), size: blob.size, blob: blob.digest, target: first.target});
          (dir.replaced ??= []).push({start, end, bytes: w.done()});
          this.release(dir);
        };
        if (first.blob) link(first.blob);
        else first.waiters.push(link);
        return;
      }
      group = {target: layerPath, waiters: []};
      this.groups.set(inode, group);
    }
    this.countFile();
    this.stats.bytes += job.size;
    const withGroup: FileJob = group ? {...job, group} : job;
    if (job.size > READ_WHOLE_MAX) this.addHuge(withGroup);
    else this.pool.add(withGroup);
  }

  /**
   * Awaits `p` (a listing, room in the pool), meanwhile storing in this thread files queued
   * for the threads that none has taken yet (`FilePool.storeSomeHere`), else listing the
   * next directory no thread was asked for (`ListingQueue.listAhead`), letting the threads'
   * replies in after each turn: on 2 cores there is one hashing thread, and this one waited
   * most of a rootfs import while that one read and wrote every large file, and ~45 % of an
   * import of small files, which the listings read all of (docs/benchmarks.md, "The rootfs
   * import on 2 cores" and "fifth round").
   */
  private async helpWhile<T>(p: Promise<T>): Promise<T> {
    let settled = false;
    const mark = () => { settled = true; };
    p.then(mark, mark);
    await undefined; // `mark` runs first when `p` is settled already
    while (!settled && (this.pool.storeSomeHere() || this.listings.listAhead((dir, layerPath) => this.listHere(dir, layerPath))))
      await new Promise<void>(resolve => setImmediate(resolve));
    return p;
  }

  /** A file too large to read whole: through the store in this thread, two at a time, beside the pool. */
  private addHuge(job: FileJob): void {
    this.huge.push(job);
    this.startHuge();
  }

  private startHuge(): void {
    while (this.hugeRunning < HUGE_AT_ONCE && this.huge.length > 0 && !this.failed) {
      const job = this.huge.shift()!;
      this.hugeRunning++;
      this.hugeDone.push((async () => {
        try {
          const blob = await this.store.putBlobFromFile(job.path, job.size);
          const now = statSync(job.path);
          if (blob.size !== job.stamp.size || now.size !== job.stamp.size || now.mtimeMs !== job.stamp.mtimeMs || now.ctimeMs !== job.stamp.ctimeMs) throw changedError(job.path);
          this.fileStored(job, blob);
        } catch (err) {
          this.failed ??= err instanceof StoreError ? err : sourceError(err, job.path);
        } finally {
          this.hugeRunning--;
          this.startHuge();
        }
      })());
    }
  }

  private async hugeFinished(): Promise<void> {
    let seen;
    do {
      seen = this.hugeDone.length;
      await Promise.all(this.hugeDone);
    } while (this.hugeDone.length !== seen);
    if (this.failed) throw this.failed;
  }

  private fileStored(job: FileJob, blob: {digest: Digest; size: number}): void {
    // The listing encoded the size lstat saw; a read checks that the file still has it (`checkUnchanged`).
    if (blob.size !== job.size) throw changedError(job.path);
    if (job.group) {
      job.group.blob = {digest: blob.digest, size: blob.size};
      for (const link of job.group.waiters.splice(0)) link(job.group.blob);
    }
    this.blobKnown(job.dir, job.ref, blob.digest, blob.size);
  }

  /** A file's blob is indexed (or queued to be, in the batch before its tree's): into its entry, unless there already (`ref` undefined). */
  private blobKnown(dir: PendingDir, ref: number | undefined, digest: Digest, size: number): void {
    if (size > 0 && size <= INLINE_MAX) this.inlineBlobs.set(digest, size);
    this.stored++;
    this.storedBytes += size;
    this.options.onProgress?.({files: this.stored, bytes: this.storedBytes, ...(this.walked ? {totalFiles: this.files} : {})});
    if (ref === undefined) this.release(dir);
    else this.fill(dir, ref, digest);
  }

  private pendingDir(meta: Meta, opaque: boolean, done: (tree: Digest) => void): PendingDir {
    return {meta, opaque, entries: EMPTY, count: 0, waiting: 1, done};
  }

  /** Writes a reference learnt (a file's blob, a subdirectory's tree) into its entry; the tree is written when it was the last one missing. */
  private fill(dir: PendingDir, ref: number, digest: Digest): void {
    dir.entries.write(digest.slice(3), ref, 32, 'hex');
    this.release(dir);
  }

  private release(dir: PendingDir): void {
    if (--dir.waiting > 0) return;
    const parts = [encodeTreeHead({...dir.meta, opaque: dir.opaque}, dir.count)];
    if (!dir.replaced) {
      parts.push(dir.entries);
    } else {
      let at = 0;
      for (const r of dir.replaced.sort((a, b) => a.start - b.start)) {
        parts.push(dir.entries.subarray(at, r.start), r.bytes);
        at = r.end;
      }
      parts.push(dir.entries.subarray(at));
    }
    // Not cached: a tree is written once here, and the cache would keep every entry of the layer.
    dir.done(this.store.putEncodedTreeSync(Buffer.concat(parts)));
  }
}

const EMPTY = Buffer.alloc(0);

/** An entry's mode, owner, mtime and xattrs from a listing's numbers. */
function metaAt(numbers: Float64Array, at: number, xattrs: Xattrs | undefined): Meta {
  const mode = numbers[at + F_MODE]!, uid = numbers[at + F_UID]!, gid = numbers[at + F_GID]!, mtime = numbers[at + F_MTIME]!;
  return xattrs ? {mode, uid, gid, mtime, xattrs} : {mode, uid, gid, mtime};
}

/** A directory import's root as the walk names paths under it: normalised, without a trailing slash (but `/`). */
function hostDirOf(dir: string): string {
  const n = path.normalize(dir);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** A host entry's xattrs as the layer keeps them (`layerXattrs` says which). */
function xattrsAt(hostPath: string, options: DirectoryImportOptions): {xattrs?: Xattrs} {
  let xattrs: Xattrs | undefined;
  try {
    xattrs = layerXattrs(hostPath, options.upper);
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw sourceError(err, hostPath);
  }
  return xattrs ? {xattrs} : {};
}

/** A host entry's mode, owner and mtime; in a writable layer, the owner it records (`recordedOwner`). */
export function metaOf(st: Stats, hostPath: string, options: DirectoryImportOptions): Meta {
  const {uid, gid} = options.upper ? recordedOwner(hostPath, st) : st;
  return {mode: st.mode & 0o7777, uid, gid, mtime: Math.floor(st.mtimeMs / 1000)};
}

/** Runs `fn` over items with at most `limit` in flight; the first failure stops new work and is thrown. */
export async function runPool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({length: Math.min(limit, items.length)}, worker));
  if (failed !== undefined) throw failed;
}
