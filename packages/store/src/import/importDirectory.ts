import {type Dirent, type Stats, lstatSync, readdirSync, readlinkSync, statSync} from '../host/hostFs.js';
import {layerXattrs} from './layerXattrs.js';
import * as path from 'node:path';
import type {Digest} from '../objects/digest.js';
import {StoreError, sourceError} from '../errors.js';
import {FilePool} from './FilePool.js';
import {type FileStamp, READ_WHOLE_MAX} from '../objects/storeFileSync.js';
import {LayerBuilder} from './LayerBuilder.js';
import {type ImportOptions, type ImportResult, finishImport, finishLayer} from './importResult.js';
import type {Store} from '../objects/Store.js';
import {type Meta, type Tree, type TreeEntry, type Xattrs, compareNames, sortEntries} from '../objects/tree.js';
import {type UpperForm, deviceNumbers} from '../containers/upperForm.js';
import {OPAQUE_MARKER, WHITEOUT_PREFIX} from '../objects/whiteoutNames.js';
import {recordedOwner} from '../containers/ownerRecord.js';

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

/** A regular file on its way to the hashing threads, and where its entry goes when it is stored. */
interface FileJob {
  readonly name: string;
  readonly path: string;
  readonly size: number;
  readonly stamp: FileStamp;
  readonly dir: PendingDir;
  readonly slot: Slot;
  readonly entry: Omit<Extract<TreeEntry, {kind: 'file'}>, 'name' | 'size' | 'blob'>;
  /** Set when other paths of the tree link to this file (it is the first of them in byte order). */
  readonly group?: LinkGroup;
}

/** One name of a directory being imported; `entry` is set once it is known (a file once stored). */
interface Slot {
  entry?: TreeEntry;
}

/**
 * A directory whose tree is not written yet: the walk is in it or below it, or some of
 * its files are still being stored. `waiting` counts the slots without an entry, plus
 * one while the walk is inside; at zero its tree is written and only the digest goes up.
 */
interface PendingDir {
  readonly meta: Meta;
  opaque: boolean;
  readonly slots: Map<string, Slot>;
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
  const written = await new DirectoryWalk(store, options).run(dir, rootStat);
  return finishLayer(store, written, {...options, source: options.source ?? path.resolve(dir)}, before);
}

/** Files handled by the pool's threads; bigger ones stream through this thread (reading, hashing and writing overlap there). */
const HUGE_AT_ONCE = 2;

/**
 * One directory import: a depth-first walk in byte order of the full paths (a directory's
 * names sorted as if each directory's ended in `/`), so the first path of a hardlinked
 * file that the walk meets is the first in byte order, which holds the content: equal
 * trees give equal layers, whatever order the filesystem lists them in.
 */
class DirectoryWalk {
  private readonly pool: FilePool<FileJob>;
  private readonly groups = new Map<string, LinkGroup>();
  private readonly huge: FileJob[] = [];
  private hugeRunning = 0;
  /** One per file over READ_WHOLE_MAX (a few: each is over 64 MiB). */
  private readonly hugeDone: Promise<void>[] = [];
  private failed: unknown;
  private stats = {entries: 0, bytes: 0};
  private files = 0;
  private stored = 0;
  private storedBytes = 0;
  private walked = false;

  constructor(private readonly store: Store, private readonly options: DirectoryImportOptions) {
    this.pool = new FilePool<FileJob>(store.blobDirs(), (f, err) => {
      const e = Object.assign(new Error(err.message), err);
      if (err.code === 'ENOSPC') return new StoreError('NO_SPACE', `the disk is full while storing ${f.path}`, {cause: e});
      if (err.code === 'SOURCE_CHANGED') return changedError(f.path);
      return sourceError(e, f.path);
    }, (job, blob) => {
      this.store.indexFileBlob(blob); // an inline blob's bytes wait only in the index's pending batch
      this.fileStored(job, blob);
    });
  }

  async run(dir: string, rootStat: Stats): Promise<{root: Digest; entries: number; bytes: number}> {
    let root: Digest | undefined;
    const top = this.pendingDir({...metaOf(rootStat, dir, this.options), ...xattrsAt(dir, this.options)}, this.options.upper?.isOpaque(dir) ?? false, d => { root = d; });
    try {
      await this.walk(dir, [], top);
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
    return {root, ...this.stats};
  }

  /**
   * Lists a directory tree with synchronous calls: each async fs call here costs a libuv
   * round trip several times the syscall itself (docs/benchmarks.md, "import"). Waits
   * only for room in the hashing pool.
   */
  private async walk(hostDir: string, parts: string[], dir: PendingDir): Promise<void> {
    const {options} = this;
    let dirents: Dirent[];
    try {
      dirents = readdirSync(hostDir, {withFileTypes: true});
    } catch (err) {
      throw sourceError(err, hostDir);
    }
    // A whiteout and an entry of the same name: the later one listed wins (as a tar's later member does).
    const winner = new Map<string, Dirent>();
    for (const d of dirents) {
      if (options.upper && d.name.startsWith(WHITEOUT_PREFIX))
        throw new StoreError('WHITEOUT_NAME', `/${[...parts, d.name].join('/')}: a file named ${d.name} cannot be put in a layer (in an OCI layer, names starting with ${WHITEOUT_PREFIX} mark whiteouts); rename or remove it first`);
      if (d.name.startsWith(WHITEOUT_PREFIX)) {
        if (!options.whiteoutNames)
          throw new StoreError('UNSUPPORTED_ENTRY', `${path.join(hostDir, d.name)}: names starting with ${WHITEOUT_PREFIX} are whiteout markers and cannot be stored as files`);
        if (d.name === OPAQUE_MARKER) dir.opaque = true;
        else winner.set(d.name.slice(WHITEOUT_PREFIX.length), d);
        continue;
      }
      winner.set(d.name, d);
    }
    const order = [...winner].map(([name, d]) => ({name, d, key: d.isDirectory() ? `${name}/` : name}));
    order.sort((a, b) => compareNames(a.key, b.key));
    for (const {name, d} of order) {
      if (this.pool.error) throw this.pool.error;
      if (this.failed) throw this.failed;
      const slot: Slot = {};
      dir.slots.set(name, slot);
      dir.waiting++;
      if (d.name !== name) { // a whiteout file
        this.fill(dir, slot, {name, kind: 'whiteout'});
        continue;
      }
      const hostPath = path.join(hostDir, name);
      const childParts = [...parts, name];
      let st: Stats;
      try {
        st = lstatSync(hostPath);
      } catch (err) {
        throw sourceError(err, hostPath);
      }
      if (options.upper?.isWhiteout(st)) {
        this.fill(dir, slot, {name, kind: 'whiteout'});
        continue;
      }
      const xattrs = xattrsAt(hostPath, options);
      const meta = {...metaOf(st, hostPath, options), ...xattrs};
      if (st.isCharacterDevice() || st.isBlockDevice()) {
        this.fill(dir, slot, {name, kind: st.isCharacterDevice() ? 'char' : 'block', ...meta, ...deviceNumbers(st.rdev)});
      } else if (st.isDirectory()) {
        const sub = this.pendingDir(meta, options.upper?.isOpaque(hostPath) ?? false, tree => this.fill(dir, slot, {name, kind: 'dir', tree}));
        await this.walk(hostPath, childParts, sub);
      } else if (st.isFile()) {
        this.addFile(hostPath, st, dir, slot, childParts, {kind: 'file', ...meta});
        await this.pool.room();
      } else if (st.isSymbolicLink()) {
        let target: string;
        try {
          target = readlinkSync(hostPath);
        } catch (err) {
          throw sourceError(err, hostPath);
        }
        this.fill(dir, slot, {name, kind: 'symlink', ...meta, target});
      } else if (st.isFIFO()) {
        this.fill(dir, slot, {name, kind: 'fifo', ...meta});
      } else {
        const what = st.isSocket() ? 'a socket' : 'of an unknown type';
        throw new StoreError('UNSUPPORTED_ENTRY', `${hostPath} is ${what}, which a layer cannot hold`);
      }
    }
    this.release(dir); // the walk has left it
  }

  private addFile(hostPath: string, st: Stats, dir: PendingDir, slot: Slot, parts: string[], entry: FileJob['entry']): void {
    const name = parts[parts.length - 1]!;
    let group: LinkGroup | undefined;
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.groups.get(key);
      if (first) {
        // A later path of a file met before: a hardlink to it, with its blob and size.
        const link = (blob: {digest: Digest; size: number}) => this.fill(dir, slot, {...entry, name, kind: 'hardlink', size: blob.size, blob: blob.digest, target: first.target});
        if (first.blob) link(first.blob);
        else first.waiters.push(link);
        return;
      }
      group = {target: `/${parts.join('/')}`, waiters: []};
      this.groups.set(key, group);
    }
    this.files++;
    const job: FileJob = {name, path: hostPath, size: st.size, stamp: stampOf(st), dir, slot, entry, ...(group ? {group} : {})};
    if (st.size > READ_WHOLE_MAX) this.addHuge(job);
    else this.pool.add(job);
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
    this.stored++;
    this.storedBytes += blob.size;
    this.options.onProgress?.({files: this.stored, bytes: this.storedBytes, ...(this.walked ? {totalFiles: this.files} : {})});
    this.fill(job.dir, job.slot, {...job.entry, name: job.name, size: blob.size, blob: blob.digest});
    if (job.group) {
      job.group.blob = {digest: blob.digest, size: blob.size};
      for (const link of job.group.waiters.splice(0)) link(job.group.blob);
    }
  }

  private pendingDir(meta: Meta, opaque: boolean, done: (tree: Digest) => void): PendingDir {
    return {meta, opaque, slots: new Map(), waiting: 1, done};
  }

  /** Gives a slot its entry; the directory's tree is written when that was the last one it waited for. */
  private fill(dir: PendingDir, slot: Slot, entry: TreeEntry): void {
    slot.entry = entry;
    this.stats.entries++;
    if (entry.kind === 'file') this.stats.bytes += entry.size;
    this.release(dir);
  }

  private release(dir: PendingDir): void {
    if (--dir.waiting > 0) return;
    const entries: TreeEntry[] = [];
    for (const slot of dir.slots.values()) entries.push(slot.entry!);
    const tree: Tree = {...dir.meta, opaque: dir.opaque, entries: sortEntries(entries)};
    // Not cached: a tree is written once here, and the cache would keep every entry of the layer.
    dir.done(this.store.putTreeSync(tree, {cache: false}));
  }
}

/**
 * A file that changed between the walk and the end of its read is refused rather than
 * stored torn (GNU tar's "file changed as we read it"); the import fails and removes what
 * it wrote. Retrying could not promise a consistent tree either: import a quiet source.
 */
function changedError(hostPath: string): StoreError {
  return new StoreError('SOURCE_CHANGED', `${hostPath} changed while strata read it; import a directory that nothing is writing to`);
}

const stampOf = (st: Stats): FileStamp => ({size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs});

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
