import {type Dirent, type Stats, lstatSync, readdirSync, readlinkSync, statSync} from '../host/hostFs.js';
import {layerXattrs} from './layerXattrs.js';
import * as path from 'node:path';
import type {Digest} from '../objects/digest.js';
import {StoreError, sourceError} from '../errors.js';
import {storeFiles} from './FilePool.js';
import {type FileStamp, READ_WHOLE_MAX} from '../objects/storeFileSync.js';
import {LayerBuilder} from './LayerBuilder.js';
import {type ImportOptions, type ImportResult, finishImport} from './importResult.js';
import type {Store} from '../objects/Store.js';
import type {Meta, Xattrs} from '../objects/tree.js';
import {nameToBytes} from '../objects/names.js';
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

interface FileJob {
  readonly parts: string[];
  readonly hostPath: string;
  readonly stat: Stats;
  readonly xattrs: Xattrs | undefined;
}

/**
 * Imports a host directory as a layer: regular files, directories (empty ones too),
 * symlinks, hardlinks (within the directory), fifos and device nodes; modes, owners,
 * mtimes (seconds), xattrs (`xattrsAt` says which). Names are bytes (objects/names.ts).
 * Sockets are refused (UNSUPPORTED_ENTRY; a tar cannot hold one either), as is a missing
 * or unreadable path (SOURCE_MISSING). Each file is read once. Nothing becomes visible unless the whole
 * import succeeds: the layer record is the commit point.
 */
export async function importDirectory(store: Store, dir: string, options: DirectoryImportOptions = {}): Promise<ImportResult> {
  // A failed import removes what it wrote (a full disk above all), not only its record.
  return store.undoOnFailure(() => readDirectory(store, dir, options));
}

async function readDirectory(store: Store, dir: string, options: DirectoryImportOptions): Promise<ImportResult> {
  const before = store.writeCounters();
  const builder = new LayerBuilder();
  const files: FileJob[] = [];
  let rootStat: Stats;
  try {
    rootStat = statSync(dir); // the source may be a symlink to the directory, as `tar -C` allows
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && options.allowMissing) return finishImport(store, builder, options, before);
    throw sourceError(err, dir);
  }
  if (!rootStat.isDirectory()) throw new StoreError('SOURCE_MISSING', `${dir} is not a directory`);
  builder.dir([], {...metaOf(rootStat, dir, options), ...xattrsAt(dir, options)});
  if (options.upper?.isOpaque(dir)) builder.opaque([]);
  walk(dir, [], builder, files, options);

  // A file with several links inside the tree: the first path in sorted order holds the
  // content, the others become hardlinks to it, so equal trees give equal layers.
  const firstLink = new Map<string, FileJob>();
  files.sort((a, b) => Buffer.compare(nameToBytes(a.parts.join('/')), nameToBytes(b.parts.join('/'))));
  const toHash: FileJob[] = [];
  const byPath = new Map<string, FileJob>();
  const links: [FileJob, FileJob][] = [];
  for (const job of files) {
    if (job.stat.nlink > 1) {
      const key = `${job.stat.dev}:${job.stat.ino}`;
      const first = firstLink.get(key);
      if (first) { links.push([job, first]); continue; }
      firstLink.set(key, job);
    }
    toHash.push(job);
    byPath.set(job.hostPath, job);
  }

  // Files too large to read whole stream through the store in this thread (reading,
  // hashing and writing overlap there), alongside the threads that take the rest.
  const huge = toHash.filter(job => job.stat.size > READ_WHOLE_MAX);
  const rest = toHash.filter(job => job.stat.size <= READ_WHOLE_MAX);
  const hashed = new Map<FileJob, {digest: Digest; size: number}>();
  let done = 0, bytes = 0;
  const stored = (job: FileJob, size: number) => {
    done++; bytes += size;
    options.onProgress?.({files: done, bytes, totalFiles: toHash.length});
  };
  const [blobs] = await Promise.all([
    storeFiles(rest.map(job => ({path: job.hostPath, size: job.stat.size, stamp: stampOf(job.stat)})), store.blobDirs(), (f, err) => {
      const e = Object.assign(new Error(err.message), err);
      if (err.code === 'ENOSPC') return new StoreError('NO_SPACE', `the disk is full while storing ${f.path}`, {cause: e});
      if (err.code === 'SOURCE_CHANGED') return changedError(f.path);
      return sourceError(e, f.path);
    }, (f, blob) => {
      if (blob.data) store.indexFileBlob(blob); // now, so its bytes need not stay until the end
      stored(byPath.get(f.path)!, blob.size);
    }),
    runPool(huge, 2, async job => {
      try {
        hashed.set(job, await store.putBlobFromFile(job.hostPath, job.stat.size));
        const now = statSync(job.hostPath);
        const was = stampOf(job.stat);
        if (hashed.get(job)!.size !== was.size || now.size !== was.size || now.mtimeMs !== was.mtimeMs || now.ctimeMs !== was.ctimeMs) throw changedError(job.hostPath);
      } catch (err) {
        if (err instanceof StoreError) throw err;
        throw sourceError(err, job.hostPath);
      }
      stored(job, hashed.get(job)!.size);
    }),
  ]);
  for (const [i, blob] of blobs.entries()) {
    // Object files are in place now; inline blobs were indexed as they came (FilePool).
    if (blob.size > store.blobDirs().inlineMax) store.indexFileBlob(blob);
    hashed.set(rest[i]!, blob);
  }
  for (const job of toHash) {
    const {digest, size} = hashed.get(job)!;
    builder.leaf(job.parts, {kind: 'file', ...metaOf(job.stat, job.hostPath, options), ...(job.xattrs ? {xattrs: job.xattrs} : {}), size, blob: digest});
  }
  for (const [job, first] of links) {
    const {digest, size} = hashed.get(first)!;
    builder.leaf(job.parts, {kind: 'hardlink', ...metaOf(job.stat, job.hostPath, options), ...(job.xattrs ? {xattrs: job.xattrs} : {}), size, blob: digest, target: `/${first.parts.join('/')}`});
  }
  return finishImport(store, builder, {...options, source: options.source ?? path.resolve(dir)}, before);
}

/**
 * Lists a directory tree with synchronous calls: each async fs call here costs a libuv
 * round trip several times the syscall itself (docs/benchmarks.md, "import").
 */
function walk(hostDir: string, parts: string[], builder: LayerBuilder, files: FileJob[], options: DirectoryImportOptions): void {
  let dirents: Dirent[];
  try {
    dirents = readdirSync(hostDir, {withFileTypes: true});
  } catch (err) {
    throw sourceError(err, hostDir);
  }
  for (const d of dirents) {
    const hostPath = path.join(hostDir, d.name);
    const childParts = [...parts, d.name];
    if (options.upper && d.name.startsWith(WHITEOUT_PREFIX))
      throw new StoreError('WHITEOUT_NAME', `/${childParts.join('/')}: a file named ${d.name} cannot be put in a layer (in an OCI layer, names starting with ${WHITEOUT_PREFIX} mark whiteouts); rename or remove it first`);
    if (d.name.startsWith(WHITEOUT_PREFIX)) {
      if (!options.whiteoutNames)
        throw new StoreError('UNSUPPORTED_ENTRY', `${hostPath}: names starting with ${WHITEOUT_PREFIX} are whiteout markers and cannot be stored as files`);
      if (d.name === OPAQUE_MARKER) builder.opaque(parts);
      else builder.leaf([...parts, d.name.slice(WHITEOUT_PREFIX.length)], {kind: 'whiteout'});
      continue;
    }
    let st: Stats;
    try {
      st = lstatSync(hostPath);
    } catch (err) {
      throw sourceError(err, hostPath);
    }
    if (options.upper?.isWhiteout(st)) {
      builder.leaf(childParts, {kind: 'whiteout'});
      continue;
    }
    const xattrs = xattrsAt(hostPath, options);
    const meta = {...metaOf(st, hostPath, options), ...xattrs};
    if (st.isCharacterDevice() || st.isBlockDevice()) {
      builder.leaf(childParts, {kind: st.isCharacterDevice() ? 'char' : 'block', ...meta, ...deviceNumbers(st.rdev)});
    } else if (st.isDirectory()) {
      builder.dir(childParts, meta);
      if (options.upper?.isOpaque(hostPath)) builder.opaque(childParts);
      walk(hostPath, childParts, builder, files, options);
    } else if (st.isFile()) {
      files.push({parts: childParts, hostPath, stat: st, xattrs: xattrs.xattrs});
    } else if (st.isSymbolicLink()) {
      let target: string;
      try {
        target = readlinkSync(hostPath);
      } catch (err) {
        throw sourceError(err, hostPath);
      }
      builder.leaf(childParts, {kind: 'symlink', ...meta, target});
    } else if (st.isFIFO()) {
      builder.leaf(childParts, {kind: 'fifo', ...meta});
    } else {
      const what = st.isSocket() ? 'a socket' : 'of an unknown type';
      throw new StoreError('UNSUPPORTED_ENTRY', `${hostPath} is ${what}, which a layer cannot hold`);
    }
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
