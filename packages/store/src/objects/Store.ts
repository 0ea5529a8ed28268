import {createReadStream, existsSync, readFileSync} from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {Readable} from 'node:stream';
import {type Digest, createHasher, ensureHasher, hashBytes, isDigest, shortDigest} from './digest.js';
import {StoreError, rethrowNoSpace} from '../errors.js';
import {type Image, chainId, decodeImage, hashImage} from './image.js';
import {type TagRef, parseTag} from './refs.js';
import {whyNotWritable} from './readOnlyIndex.js';
import {type LockWait, ownCommand} from './storeLock.js';
import {Lease} from '../maintenance/leases.js';
import {restoreFromTrash} from '../maintenance/trash.js';
import {InlineSpool} from '../meta/inlineSpool.js';
import {type BlobDirs, type FileBlob, READ_WHOLE_MAX, objectPathIn, tmpPathIn} from './storeFileSync.js';
import {type Meta, type Tree, decodeTree, decodeTreeMeta, hashTree} from './tree.js';
import {Index, type IndexOp} from '../index/Index.js';
import {PREFIX, blobKey, containerKey, containerNameKey, digestOf, flatKey, imageKey, layerKey, tagKey, treeKey} from '../index/keys.js';
import {type BlobValue, decodeBlobValue, decodeRecord, decodeText, encodeRecord, encodeText, fileBlobValue, inlineBlobValue} from '../index/values.js';
import {makeDirs} from '../makeDirs.js';
import {checkBlobBytes, copyVerified, openVerified} from './verifiedRead.js';
import {UpperForm} from '../containers/upperForm.js';
import {upgradeStore} from './upgradeStore.js';
import {fsPath} from './names.js';

/**
 * The store format this code writes; a store with a higher number is refused, one with a
 * lower number is upgraded when opened (`upgradeStore.ts`). 2: writable layers in the
 * kernel overlayfs form (`upperForm.ts`). 3: implicit directories in trees, names and
 * xattr values as bytes, platforms in images (docs/format.md, "Store format").
 */
export const FORMAT_VERSION = 3;

/** `strata.json`: the format, and whether writable layers use `user.overlay.*` xattrs (a store made without root). */
export interface StoreMarker {
  readonly format: number;
  readonly userxattr?: boolean;
}

/**
 * Blobs up to this size live inline in LevelDB, larger ones as files under objects/.
 * Measured by `npm run bench -- inline` (docs/benchmarks.md): writing and reading a blob
 * inline costs less than an object file up to 16 KiB and more from 32 KiB on, where
 * LevelDB's compactions rewrite the bytes while an object file is written once.
 */
export const INLINE_MAX = 16 * 1024;

const TREE_CACHE_MAX = 100_000;

/** A layer's index record: its root tree and what importing it found. */
export interface LayerRecord {
  readonly id: Digest;
  /** Regular files, directories, links… every entry of the layer, whiteouts included. */
  readonly entries: number;
  /** Sum of the sizes of the regular files in the layer (hardlinks counted once). */
  readonly bytes: number;
  readonly created: string;
  /** Where it came from: a path, "commit of <container>"… for people, not for code. */
  readonly source?: string;
  /**
   * The store format a layer was stored in, when older than 3: its trees do not record
   * implicit directories, so its export keeps the old rule for the root. Absent since.
   */
  readonly format?: number;
}

/** A container's index record; its writable layer is the directory `Store.upperDir(id)`. */
export interface ContainerRecord {
  readonly id: string;
  readonly name?: string;
  readonly image: Digest;
  readonly created: string;
}

export interface OpenOptions {
  /** Create the store if the directory has none. */
  readonly create?: boolean;
  /** How long to wait for another strata process to let go of the store, in ms (default: STRATA_LOCK_TIMEOUT_MS, else 60 s). */
  readonly lockTimeoutMs?: number;
  /** Told once, after a second of waiting for a busy store, whom it waits for. */
  readonly onWait?: (wait: LockWait) => void;
  /**
   * The caller only reads: a store this process cannot write (a read-only filesystem,
   * another user's) is then opened from a private snapshot of its index instead of failing
   * with STORE_READONLY. Writes to such a handle go to the snapshot and are lost at close.
   */
  readonly readOnly?: boolean;
  /** Overrides `INLINE_MAX` for this handle; for benchmarks and tests that need both paths. */
  readonly inlineMax?: number;
  /** Start an empty index where there is none (`rebuildIndex`, for verify --repair); otherwise a missing index is INDEX_MISSING. */
  readonly newIndex?: boolean;
}

/**
 * A content-addressed store: blobs, trees, layers and images named by BLAKE3, indexed in
 * LevelDB, with refs (tags, containers, pins) that keep them alive.
 *
 * Lifecycle: `Store.open(dir)` takes the LevelDB lock (one process at a time; others wait
 * up to `lockTimeoutMs`), content writes (`putBlob…`, `putTree`) are buffered and become
 * visible at `flush()`; ref writes (`putLayer`, `putImage`, `setTag`…) flush content first
 * and then commit atomically and durably, so a ref never names content the index lacks.
 * `close()` flushes and lets go of the lock.
 *
 * On disk: `strata.json` (format version), `index/` (LevelDB), `objects/b3/ab/cdef…` (large
 * blobs), `tmp/` (writes in progress), `containers/<id>/` (writable layers).
 */
export class Store {
  private readonly treeCache = new Map<Digest, Tree>();
  private readonly madeDirs = new Set<string>();
  /** The bytes of the inline blobs stored since the last layer's pack took them (takeInlineSpool). */
  private spool: InlineSpool | undefined;
  private readonly counters = {objects: 0, blobBytes: 0};

  /** How this store's writable layers are kept on disk (whiteouts, opaque directories). */
  readonly upper: UpperForm;

  /**
   * The index behind this store (index/Index.ts). The store's own modules (gc, verify,
   * pins, leases, image import) read and commit through it with keys from index/keys.ts;
   * other packages use the methods of this class.
   */
  readonly index: Index;

  /** This process's lease on a shared store (maintenance/leases.ts): what it writes, gc keeps. */
  private readonly lease: Lease | undefined;

  private constructor(readonly dir: string, index: Index, private readonly inlineMax: number, userxattr: boolean, shared = true) {
    this.index = index;
    if (shared) {
      this.lease = Lease.acquire(dir, ownCommand());
      index.setBeforeWrite((batch, relied) => this.beforeWrite(batch, relied));
    }
    // A tree deleted by a commit (gc, repair) must not be served from the cache afterwards.
    index.onDelete(key => {
      const tree = digestOf(key, 'tree');
      if (tree) this.treeCache.delete(tree);
    });
    this.upper = new UpperForm(dir, userxattr);
  }

  /** Opens (or with `create`, creates) the store in `dir`. Throws STORE_MISSING, NOT_A_STORE, STORE_VERSION, STORE_LOCKED, INDEX_MISSING, STORE_READONLY, BAD_SETTING. */
  static async open(dir: string, options: OpenOptions = {}): Promise<Store> {
    dir = path.resolve(dir);
    await ensureHasher();
    let marker = await readMarker(dir);
    const fresh = !marker && options.create;
    /** A new store's marker, written and synced while LevelDB creates the index (awaited below). */
    let markerWritten: Promise<void> | undefined;
    if (!marker && options.create) {
      const entries = await fs.readdir(dir).catch(() => [] as string[]);
      if (entries.length > 0) throw new StoreError('NOT_A_STORE', `${dir} is not empty and is not a strata store`);
      makeDirs(dir); // not fs.mkdir's recursive mode: it spins where mkdir cannot work (/proc)
      // index/ too (LevelDB would make it), so that the marker's sync of this directory covers every entry init makes.
      await Promise.all(['objects', 'tmp', 'containers', 'index'].map(sub => fs.mkdir(path.join(dir, sub), {recursive: true})));
      // Without root, trusted.* xattrs cannot be set: the rootless overlayfs form (userxattr).
      marker = {format: FORMAT_VERSION, ...(process.getuid?.() === 0 ? {} : {userxattr: true})};
      markerWritten = writeMarker(dir, marker);
      markerWritten.catch(() => {}); // a failure is thrown where it is awaited, below
    } else if (!marker) {
      const exists = await fs.stat(dir).then(() => true, () => false);
      throw exists
        ? new StoreError('NOT_A_STORE', `${dir} is not a strata store (no strata.json); run "strata init" on an empty directory`)
        : new StoreError('STORE_MISSING', `there is no strata store at ${dir}; run "strata init" first`);
    }
    checkFormat(dir, marker);
    // A store without its index is damaged, not empty: opening would start a fresh index,
    // and the next gc would take every object file and container directory as garbage.
    if (!fresh && !options.newIndex && !existsSync(path.join(dir, 'index', 'CURRENT')))
      throw new StoreError('INDEX_MISSING', `the store at ${dir} has lost its index (index/ is missing or empty); nothing was changed. "strata verify --repair" rebuilds what the object files and containers hold`);
    // A store this process has just made is writable (it made every directory in it).
    const unwritable = fresh ? undefined : await whyNotWritable(dir);
    if (unwritable !== undefined) {
      if (!options.readOnly) throw new StoreError('STORE_READONLY', `the store at ${dir} is ${unwritable}, and this command changes it`);
      if (marker.format < FORMAT_VERSION) throw new StoreError('STORE_READONLY', `the store at ${dir} has format ${marker.format} and needs an upgrade to ${FORMAT_VERSION}, but it is ${unwritable}`);
      // Nothing can change a store nobody may write, so no lock is needed: read a private snapshot of its index.
      return new Store(dir, await Index.openSnapshot(path.join(dir, 'index'), dir), options.inlineMax ?? INLINE_MAX, marker.userxattr === true, false);
    }
    let index: Index;
    try {
      index = await Index.open(path.join(dir, 'index'), {
        holderDir: dir, snapshotDir: path.join(dir, 'tmp'), waitDir: path.join(dir, 'waiting'), ...options,
      });
    } catch (err) {
      await markerWritten?.catch(() => {});
      throw err;
    }
    // A new store's marker is durable before the store is used: before any command can
    // commit a ref to its index (docs/design.md, "The fixed cost of a command": init).
    try {
      await markerWritten;
    } catch (err) {
      await index.close();
      throw err;
    }
    const store = new Store(dir, index, options.inlineMax ?? INLINE_MAX, marker.userxattr === true);
    if (marker.format < FORMAT_VERSION) {
      try {
        await index.exclusive(async () => {
          // Read again under the lock: the process we waited for may have upgraded it.
          const now = (await readMarker(dir)) ?? marker!;
          checkFormat(dir, now);
          if (now.format >= FORMAT_VERSION) return;
          await upgradeStore(store, now.format);
          await writeMarker(dir, {...now, format: FORMAT_VERSION});
        });
      } catch (err) {
        await store.close();
        throw err;
      }
    }
    return store;
  }

  /** The id of this handle's lease (maintenance/leases.ts); gc and df run by this handle leave it out. */
  get leaseId(): string | undefined {
    return this.lease?.id;
  }

  /** Flushes pending writes, lets go of the index and ends this process's lease. */
  async close(): Promise<void> {
    this.takeInlineSpool()?.discard();
    try {
      await this.index.close();
    } finally {
      this.lease?.release();
    }
  }

  /**
   * Keeps `keys` (index keys, with all they reach) from gc until this store is closed:
   * for work that reads objects a ref may stop naming meanwhile (a checkout of an image
   * being removed). Taken under the index's lock, after checking that they exist, so gc
   * either ran before (and the caller gets UNKNOWN_OBJECT) or keeps them.
   */
  async protect(keys: readonly string[]): Promise<void> {
    if (!this.lease) return; // a read-only store: nothing can remove them
    await this.index.exclusive(async () => {
      for (const key of keys) if (!(await this.index.has(key))) throw new StoreError('OBJECT_MISSING', `${key} is not in the store (removed meanwhile?)`);
      this.lease!.protect(keys);
    });
  }

  /**
   * Runs under the index's lock before each content batch: the batch's keys, and those
   * this process relied on finding, join its lease (gc keeps them from now on); and the
   * object file of every file blob in the batch is checked, since a gc may have moved one
   * to the trash after this process found it in place (maintenance/trash.ts).
   */
  private beforeWrite(batch: ReadonlyMap<string, Buffer>, relied: ReadonlySet<string>): void {
    this.lease?.protect([...batch.keys(), ...relied]);
    for (const [key, value] of batch) {
      if (value[0] !== 1 || !key.startsWith(PREFIX.blob)) continue;
      const d = digestOf(key, 'blob');
      if (!d || !decodeBlobValue(value)?.file) continue;
      const file = this.objectPath(d);
      if (existsSync(file) || restoreFromTrash(this.dir, d.slice(3), file)) continue;
      throw new StoreError('OBJECT_MISSING', `blob ${d}: its object file went missing before it was indexed; nothing was committed, run the command again`);
    }
  }

  // ---- blobs -------------------------------------------------------------------------

  /** The path of a large blob's object file (whether or not it exists). */
  objectPath(d: Digest): string {
    return objectPathIn(this.dir, d);
  }

  /** A fresh temporary path inside the store (same filesystem, so rename is atomic). */
  tmpPath(label = 'tmp'): string {
    return tmpPathIn(this.dir, label);
  }

  async hasBlob(d: Digest): Promise<boolean> {
    return this.index.has(blobKey(d));
  }

  /** Stores bytes once; returns their digest. Identical bytes are not written again. */
  async putBlob(data: Buffer): Promise<Digest> {
    const d = hashBytes(data);
    await this.putHashedBlob(d, data);
    return d;
  }

  private async putHashedBlob(d: Digest, data: Buffer): Promise<void> {
    if (this.index.knows(blobKey(d))) return;
    if (data.length <= this.inlineMax) {
      this.queue(blobKey(d), inlineBlobValue(data), data.length);
      this.spoolInline(d, data);
    } else {
      const tmp = this.tmpPath('blob');
      try {
        const fh = await fs.open(tmp, 'wx', 0o444);
        try {
          await fh.writeFile(data);
          await fh.sync();
        } finally {
          await fh.close();
        }
      } catch (err) {
        await fs.rm(tmp, {force: true});
        rethrowNoSpace(err, `blob ${shortDigest(d)}`);
      }
      await this.placeObject(tmp, d, data.length);
    }
  }

  /**
   * Stores a host file's bytes, reading it once: small files whole into memory, large
   * ones streamed into a temporary object file while hashed. Returns digest and size.
   */
  async putBlobFromFile(hostPath: string, size: number): Promise<{digest: Digest; size: number}> {
    if (size <= READ_WHOLE_MAX) {
      const data = await fs.readFile(fsPath(hostPath));
      const digest = hashBytes(data);
      await this.putHashedBlob(digest, data);
      return {digest, size: data.length};
    }
    return this.putBlobStream(createReadStream(fsPath(hostPath), {highWaterMark: 1024 * 1024}));
  }

  /** Stores a stream's bytes, hashing while writing them to a temporary object file. */
  async putBlobStream(source: AsyncIterable<Buffer>): Promise<{digest: Digest; size: number}> {
    const tmp = this.tmpPath('blob');
    const hasher = createHasher();
    let size = 0;
    let digest: Digest;
    try {
      const fh = await fs.open(tmp, 'wx', 0o444);
      try {
        for await (const chunk of source) {
          hasher.update(chunk);
          size += chunk.length;
          await fh.write(chunk);
        }
        digest = hasher.digest();
        // Bytes the store has already are dropped, so they need no fsync.
        if (size > this.inlineMax && !this.index.knows(blobKey(digest))) await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      await fs.rm(tmp, {force: true});
      rethrowNoSpace(err, 'a blob');
    }
    if (this.index.knows(blobKey(digest!))) {
      await fs.rm(tmp, {force: true});
    } else if (size <= this.inlineMax) {
      const data = await fs.readFile(tmp);
      this.queue(blobKey(digest), inlineBlobValue(data), size);
      this.spoolInline(digest, data);
      await fs.rm(tmp, {force: true});
    } else {
      await this.placeObject(tmp, digest, size);
    }
    return {digest, size};
  }

  /** Where this store's blobs go, for `storeFileSync` in a hashing thread. */
  blobDirs(): BlobDirs {
    return {dir: this.dir, inlineMax: this.inlineMax};
  }

  /** Indexes a blob that `storeFileSync` read: its bytes inline, or its object file (already in place). */
  indexFileBlob(blob: FileBlob): void {
    const key = blobKey(blob.digest);
    if (this.index.knows(key)) return;
    if (blob.value) {
      const v = blob.value;
      this.queue(key, Buffer.from(v.buffer, v.byteOffset, v.byteLength), blob.size);
      this.spoolInline(blob.digest, v.subarray(1));
    } else {
      this.queue(key, fileBlobValue(blob.size), blob.size);
    }
  }

  /** Keeps an inline blob's bytes for the pack of the layer being stored (meta/inlineSpool.ts). */
  private spoolInline(d: Digest, data: Uint8Array): void {
    (this.spool ??= new InlineSpool(() => this.tmpPath('spool'))).add(d, data);
  }

  /** The inline blobs this handle stored since the last call, with their bytes, for a layer's pack (meta/layerPacks.ts); the caller discards it. */
  takeInlineSpool(): InlineSpool | undefined {
    const s = this.spool;
    this.spool = undefined;
    return s;
  }

  private async placeObject(tmp: string, d: Digest, size: number): Promise<void> {
    const dest = this.objectPath(d);
    const parent = path.dirname(dest);
    if (!this.madeDirs.has(parent)) {
      await fs.mkdir(parent, {recursive: true});
      this.madeDirs.add(parent);
    }
    await fs.rename(tmp, dest);
    this.queue(blobKey(d), fileBlobValue(size), size);
  }

  /** Size of a blob and where its bytes are. Throws OBJECT_MISSING. */
  async statBlob(d: Digest): Promise<{size: number; inline: boolean}> {
    const v = await this.getBlobValue(d);
    return {size: v.size, inline: !v.file};
  }

  /**
   * blobValue without a thread hop, for walks that ask about every file of a tree (a
   * metadata image of 100,000 files): a point lookup in LevelDB's block cache takes a few
   * µs, the async call several times that. Throws OBJECT_MISSING, OBJECT_CORRUPT.
   */
  blobValueSync(d: Digest): BlobValue {
    const v = this.index.getSync(blobKey(d));
    if (!v) throw new StoreError('OBJECT_MISSING', `blob ${d} is missing`);
    const value = decodeBlobValue(v);
    if (!value) throw new StoreError('OBJECT_CORRUPT', `blob ${d}: its index entry is malformed; "strata verify --repair" removes it`);
    return value;
  }

  /** A blob's bytes in memory, checked against its digest. Throws OBJECT_MISSING, OBJECT_CORRUPT. */
  async readBlob(d: Digest): Promise<Buffer> {
    const v = await this.getBlobValue(d);
    if (!v.file) return checkBlobBytes(d, v.size, v.data);
    try {
      return checkBlobBytes(d, v.size, await fs.readFile(this.objectPath(d)));
    } catch (err) {
      throw objectFileError(err, d);
    }
  }

  /**
   * A blob's bytes as a stream (large blobs are not read into memory). The stream fails
   * with OBJECT_CORRUPT instead of ending when the bytes do not hash to `d`, so a damaged
   * object file is never served whole. Throws OBJECT_MISSING.
   */
  async openBlob(d: Digest): Promise<Readable> {
    const v = await this.getBlobValue(d);
    if (!v.file) return Readable.from([checkBlobBytes(d, v.size, v.data)]);
    const file = this.objectPath(d);
    try {
      await fs.access(file);
    } catch (err) {
      throw objectFileError(err, d);
    }
    return openVerified(file, d, v.size);
  }

  /**
   * Writes a blob's bytes to the host file `dest`: inline bytes directly, an object file
   * by copy (a reflink where the filesystem has them), checked against `d` either way;
   * damage removes `dest`. Throws OBJECT_MISSING, OBJECT_CORRUPT.
   */
  async copyBlob(d: Digest, dest: string): Promise<void> {
    const v = await this.getBlobValue(d);
    const target = fsPath(dest); // a name that is not UTF-8 goes to the kernel as its bytes
    if (!v.file) return fs.writeFile(target, checkBlobBytes(d, v.size, v.data));
    try {
      await copyVerified(this.objectPath(d), d, v.size, target);
    } catch (err) {
      throw objectFileError(err, d);
    }
  }

  /**
   * A blob's index value: its bytes when inline, else its size (the bytes are in
   * `objectPath(d)`); undefined when the store lacks it. Throws OBJECT_CORRUPT (a value of neither form).
   */
  async blobValue(d: Digest): Promise<BlobValue | undefined> {
    const v = await this.index.get(blobKey(d));
    if (!v) return undefined;
    const value = decodeBlobValue(v);
    if (!value) throw new StoreError('OBJECT_CORRUPT', `blob ${d}: its index entry is malformed; "strata verify --repair" removes it`);
    return value;
  }

  private async getBlobValue(d: Digest): Promise<BlobValue> {
    const value = await this.blobValue(d);
    if (!value) throw new StoreError('OBJECT_MISSING', `blob ${d} is missing`);
    return value;
  }

  /** Objects and blob bytes this handle has added so far; differences measure one operation. */
  writeCounters(): {objects: number; blobBytes: number} {
    return {...this.counters};
  }

  // ---- trees -------------------------------------------------------------------------

  /** Stores a tree (entries sorted, names valid) once; returns its digest. */
  async putTree(tree: Tree): Promise<Digest> {
    return this.putTreeSync(tree);
  }

  /**
   * putTree for a caller that writes trees as it goes (directory import). With `cache: false`
   * the tree is not kept: an import writes each tree once, and caching them would hold every
   * entry of a million-file layer in memory.
   */
  putTreeSync(tree: Tree, options: {cache?: boolean} = {}): Digest {
    const {digest, bytes} = hashTree(tree);
    if (!this.index.knows(treeKey(digest))) this.queue(treeKey(digest), bytes);
    if (options.cache ?? true) this.cacheTree(digest, tree);
    return digest;
  }

  /**
   * Stores a tree already in its canonical encoding (a directory import assembles it from
   * entries its hashing threads encoded: `TreeEntries`), not cached; returns its digest.
   * The caller vouches for the encoding (format.test.ts and the layer ids of the import
   * tests hold it to `encodeTree`'s).
   */
  putEncodedTreeSync(bytes: Buffer): Digest {
    const digest = hashBytes(bytes);
    if (!this.index.knows(treeKey(digest))) this.queue(treeKey(digest), bytes);
    return digest;
  }

  /** Reads a tree; trees never change, so they are cached. Throws OBJECT_MISSING, OBJECT_CORRUPT. */
  /**
   * A tree, checked and decoded. With `cache: false` it is not kept: a walk over a whole
   * layer (checkout, export) reads each tree once, and caching them would hold every entry
   * of a million-file tree in memory.
   */
  async getTree(d: Digest, options: {cache?: boolean} = {}): Promise<Tree> {
    return this.treeCache.get(d) ?? this.treeFrom(d, await this.index.get(treeKey(d)), options.cache ?? true);
  }

  /**
   * A tree's own metadata (mode, owner, mtime, xattrs): its bytes checked against its
   * digest, its entries not decoded. Creating a container needs only its image root's, and
   * decoding a root of thousands of entries would make it cost more for a bigger image.
   */
  async getTreeMeta(d: Digest): Promise<Meta> {
    return this.treeCache.get(d) ?? decodeTreeMeta(checkedTreeBytes(d, await this.index.get(treeKey(d))), `tree ${d}`);
  }

  /** getTree without a thread hop, for walks that visit every directory (checkout). */
  getTreeSync(d: Digest, options: {cache?: boolean} = {}): Tree {
    return this.treeCache.get(d) ?? this.treeFrom(d, this.index.getSync(treeKey(d)), options.cache ?? true);
  }

  /**
   * A tree's encoding, checked against its digest but not decoded, nor cached: for a walk
   * that reads the encoding itself (a metadata image's build, meta/treeCursor.ts). Throws
   * OBJECT_MISSING, OBJECT_CORRUPT.
   */
  treeBytesSync(d: Digest): Buffer {
    return checkedTreeBytes(d, this.index.getSync(treeKey(d)));
  }

  private treeFrom(d: Digest, bytes: Buffer | undefined, cache = true): Tree {
    // Checked as read (once per handle: trees are cached), so a damaged tree is never walked or exported.
    const tree = decodeTree(checkedTreeBytes(d, bytes), `tree ${d}`);
    if (cache) this.cacheTree(d, tree);
    return tree;
  }

  private cacheTree(d: Digest, tree: Tree): void {
    if (this.treeCache.size >= TREE_CACHE_MAX) this.treeCache.delete(this.treeCache.keys().next().value!);
    this.treeCache.set(d, tree);
  }

  // ---- layers ------------------------------------------------------------------------

  /** Records a root tree as a layer (its id is the tree's digest) and commits durably. */
  async putLayer(record: LayerRecord): Promise<void> {
    await this.index.exclusive(async () => {
      if (!(await this.index.has(layerKey(record.id)))) await this.index.commit([{type: 'put', key: layerKey(record.id), value: encodeRecord(record)}]);
    });
  }

  async getLayer(id: Digest): Promise<LayerRecord | undefined> {
    const v = await this.index.get(layerKey(id));
    return v && decodeRecord<LayerRecord>(v);
  }

  async listLayers(): Promise<LayerRecord[]> {
    return (await this.index.scan(PREFIX.layer)).map(([, v]) => decodeRecord<LayerRecord>(v));
  }

  /** Finds a layer by full id or unique hex prefix. Throws UNKNOWN_LAYER, AMBIGUOUS_ID. */
  async resolveLayer(ref: string): Promise<LayerRecord> {
    const id = isIdPrefix(ref) ? await this.resolvePrefix('layer', ref) : undefined;
    if (!id) throw new StoreError('UNKNOWN_LAYER', `there is no layer "${ref}"${tooShort(ref) ? `: ${ID_PREFIX_RULE}` : ''}`);
    return (await this.getLayer(id))!;
  }

  // ---- images and tags ----------------------------------------------------------------

  /** Stores an image (its layers must exist) and, with `tag`, points the tag at it, atomically. */
  async putImage(image: Image, tag?: TagRef): Promise<Digest> {
    const {digest, bytes} = hashImage(image);
    // The check and the commit at one moment: a gc in another process cannot take a layer in between.
    await this.index.exclusive(async () => {
      for (const l of image.layers)
        if (!(await this.index.has(layerKey(l)))) throw new StoreError('UNKNOWN_LAYER', `image names layer ${l}, which the store does not have`);
      const ops: IndexOp[] = [{type: 'put', key: imageKey(digest), value: bytes}];
      if (tag) ops.push({type: 'put', key: tagKey(tag), value: encodeText(digest)});
      await this.index.commit(ops);
    });
    return digest;
  }

  async getImage(d: Digest): Promise<Image | undefined> {
    const v = await this.index.get(imageKey(d));
    if (v && hashBytes(v) !== d) throw new StoreError('OBJECT_CORRUPT', `image ${d} is damaged: its record does not hash to its name; "strata verify" says more`);
    return v && decodeImage(v, `image ${d}`);
  }

  async listImages(): Promise<{id: Digest; image: Image; tags: TagRef[]}[]> {
    const tags = await this.listTags();
    return (await this.index.scan(PREFIX.image)).map(([k, v]) => {
      const id = k.slice(PREFIX.image.length) as Digest;
      return {id, image: decodeImage(v, `image ${id}`), tags: tags.filter(t => t.image === id).map(t => t.tag)};
    });
  }

  async setTag(tag: TagRef, image: Digest): Promise<void> {
    await this.index.exclusive(async () => {
      if (!(await this.index.has(imageKey(image)))) throw new StoreError('UNKNOWN_IMAGE', `there is no image ${image}`);
      await this.index.commit([{type: 'put', key: tagKey(tag), value: encodeText(image)}]);
    });
  }

  async getTag(tag: TagRef): Promise<Digest | undefined> {
    const v = await this.index.get(tagKey(tag));
    return v && decodeText<Digest>(v);
  }

  async deleteTag(tag: TagRef): Promise<boolean> {
    return this.index.exclusive(async () => {
      if (!(await this.index.has(tagKey(tag)))) return false;
      await this.index.commit([{type: 'del', key: tagKey(tag)}]);
      return true;
    });
  }

  async listTags(): Promise<{tag: TagRef; image: Digest}[]> {
    return (await this.index.scan(PREFIX.tag)).map(([k, v]) => ({tag: k.slice(PREFIX.tag.length) as TagRef, image: decodeText<Digest>(v)}));
  }

  /**
   * Finds an image by tag (`name:tag`, `name` meaning `name:latest`), full id, or unique
   * id prefix. A tag that exists wins over an id prefix (`cafe` is the tag `cafe:latest`
   * when there is one): a name the user gave is never shadowed by an id that happens to start
   * like it. Throws UNKNOWN_IMAGE, AMBIGUOUS_ID.
   */
  async resolveImage(ref: string): Promise<{id: Digest; image: Image}> {
    let id = await this.tagged(ref);
    if (!id && isIdPrefix(ref)) id = await this.resolvePrefix('image', ref);
    if (!id && !isIdPrefix(ref) && !isTag(ref)) throw new StoreError('BAD_REFERENCE', `"${ref}" is neither an image id nor a NAME:TAG`);
    const image = id && (await this.getImage(id));
    if (!id || !image) throw new StoreError('UNKNOWN_IMAGE', `there is no image "${ref}"${tooShort(ref) ? ` (no such tag, and ${ID_PREFIX_RULE})` : ''}`);
    return {id, image};
  }

  /** The image a tag names, when `ref` is a valid tag that exists. */
  async tagged(ref: string): Promise<Digest | undefined> {
    let tag: TagRef;
    try {
      tag = parseTag(ref);
    } catch {
      return undefined;
    }
    return this.getTag(tag);
  }

  /**
   * Deletes an image record and the tags that name it (its content stays until gc).
   * Throws IN_USE when a container uses the image: its view and commit need the record.
   */
  async deleteImage(id: Digest): Promise<TagRef[]> {
    return this.index.exclusive(async () => {
      const user = (await this.listContainers()).find(c => c.image === id);
      if (user) throw new StoreError('IN_USE', `image ${id} is used by container ${user.name ?? user.id}; remove the container first`);
      const tags = (await this.listTags()).filter(t => t.image === id).map(t => t.tag);
      await this.index.commit([{type: 'del', key: imageKey(id)}, ...tags.map(t => ({type: 'del' as const, key: tagKey(t)}))]);
      return tags;
    });
  }

  // ---- flattened stacks ----------------------------------------------------------------

  /** The merged tree memoised for a layer stack, if one was stored (see @strata/union flatten). */
  async getFlat(layers: readonly Digest[]): Promise<Digest | undefined> {
    const chain = chainId(layers);
    if (!chain) return undefined;
    const v = await this.index.get(flatKey(chain));
    return v && decodeText<Digest>(v);
  }

  async putFlat(layers: readonly Digest[], tree: Digest): Promise<void> {
    const chain = chainId(layers);
    if (chain) await this.index.commit([{type: 'put', key: flatKey(chain), value: encodeText(tree)}]);
  }

  // ---- containers ----------------------------------------------------------------------

  /** The directory that holds a container's writable layer. */
  upperDir(id: string): string {
    return path.join(this.dir, 'containers', id, 'upper');
  }

  /**
   * Records a container, checking under the index's lock that its image exists and its
   * name is free (another process may have taken either meanwhile). Throws UNKNOWN_IMAGE, NAME_TAKEN.
   */
  async putContainer(c: ContainerRecord): Promise<void> {
    const ops: IndexOp[] = [{type: 'put', key: containerKey(c.id), value: encodeRecord(c)}];
    if (c.name) ops.push({type: 'put', key: containerNameKey(c.name), value: encodeText(c.id)});
    await this.index.exclusive(async () => {
      if (!(await this.index.has(imageKey(c.image)))) throw new StoreError('UNKNOWN_IMAGE', `image ${c.image} was removed meanwhile`);
      if (c.name && (await this.index.has(containerNameKey(c.name))))
        throw new StoreError('NAME_TAKEN', `the name "${c.name}" is already used by a container`);
      await this.index.commit(ops);
    });
  }

  async getContainer(id: string): Promise<ContainerRecord | undefined> {
    const v = await this.index.get(containerKey(id));
    return v && decodeRecord<ContainerRecord>(v);
  }

  async containerIdByName(name: string): Promise<string | undefined> {
    const v = await this.index.get(containerNameKey(name));
    return v && decodeText(v);
  }

  async listContainers(): Promise<ContainerRecord[]> {
    return (await this.index.scan(PREFIX.container)).map(([, v]) => decodeRecord<ContainerRecord>(v));
  }

  /** Removes the record first (atomically), then the writable layer's files. */
  async deleteContainer(c: ContainerRecord): Promise<void> {
    const ops: IndexOp[] = [{type: 'del', key: containerKey(c.id)}];
    if (c.name) ops.push({type: 'del', key: containerNameKey(c.name)});
    await this.index.commit(ops);
    await fs.rm(path.dirname(this.upperDir(c.id)), {recursive: true, force: true});
  }

  // ---- the index -------------------------------------------------------------------------

  /**
   * Runs `work`; when it throws, removes the blobs (their object files too) and trees it
   * added, so a failed import (a full disk above all) leaves the store as it was instead of
   * full of parts (index/Index.ts, undoOnFailure).
   */
  async undoOnFailure<T>(work: () => Promise<T>): Promise<T> {
    return this.index.undoOnFailure(work, async (key, value) => {
      const d = digestOf(key, 'blob');
      if (d && decodeBlobValue(value)?.file) await fs.rm(this.objectPath(d), {force: true});
    });
  }

  /** Makes pending content writes visible (index/Index.ts, flush). */
  async flush(): Promise<void> {
    await this.index.flush();
  }

  private queue(key: string, value: Buffer, blobSize = 0): void {
    if (!this.index.queue(key, value)) return;
    this.counters.objects++;
    this.counters.blobBytes += blobSize;
  }

  private async resolvePrefix(kind: 'layer' | 'image', ref: string): Promise<Digest | undefined> {
    const hex = ref.startsWith('b3:') ? ref.slice(3) : ref;
    if (!/^[0-9a-f]{1,64}$/.test(hex)) return undefined;
    const full = `b3:${hex}`;
    const key = kind === 'layer' ? layerKey : imageKey;
    // A read, not `has`: resolving a name must not wait for the index (a snapshot answers).
    if (isDigest(full)) return (await this.index.get(key(full))) !== undefined ? full : undefined;
    // A key of a partial digest: the bounds of a prefix scan, never stored.
    const keys = await this.index.keysStartingWith(key(full as Digest), 2);
    if (keys.length > 1) throw new StoreError('AMBIGUOUS_ID', `"${ref}" matches more than one ${kind}; give more digits`);
    return keys[0]?.slice(PREFIX[kind].length) as Digest | undefined;
  }
}

/** A failed read of a blob's object file: ENOENT is OBJECT_MISSING; coded errors and others pass. */
function objectFileError(err: unknown, d: Digest): Error {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT')
    return new StoreError('OBJECT_MISSING', `blob ${d} is indexed but its object file is missing`, {cause: err});
  return err as Error;
}

/** Reads `strata.json`; undefined when there is none. Throws NOT_A_STORE when it is unreadable. */
async function readMarker(dir: string): Promise<StoreMarker | undefined> {
  let marker: StoreMarker;
  try {
    // Synchronous (a small file): fs/promises loads on its first call (~1.5 ms), and a
    // command that only reads the index (ps, images) needs nothing else of it.
    marker = JSON.parse(readFileSync(path.join(dir, 'strata.json'), 'utf8')) as StoreMarker;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') throw new StoreError('NOT_A_STORE', `${dir} cannot be a store: it (or a directory above it) is a file`, {cause: err});
    if (!(err instanceof SyntaxError)) throw err;
    throw new StoreError('NOT_A_STORE', `${dir} is not a strata store (strata.json is unreadable)`, {cause: err});
  }
  if (typeof marker?.format !== 'number') throw new StoreError('NOT_A_STORE', `${dir} is not a strata store (strata.json has no format)`);
  return marker;
}

function checkFormat(dir: string, marker: StoreMarker): void {
  if (marker.format > FORMAT_VERSION)
    throw new StoreError('STORE_VERSION', `the store at ${dir} has format ${marker.format}; this strata reads format ${FORMAT_VERSION} and older`);
}

/** Writes `strata.json` durably: a temporary file, fsynced, renamed over the old one, the directory fsynced. */
async function writeMarker(dir: string, marker: StoreMarker): Promise<void> {
  const file = path.join(dir, 'strata.json');
  const tmp = `${file}.${process.pid}`;
  const fh = await fs.open(tmp, 'w');
  try {
    await fh.writeFile(`${JSON.stringify(marker)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
  // The rename, and the store's other entries (init's directories), are durable only when the directory is.
  const parent = await fs.open(dir, 'r');
  try {
    await parent.sync();
  } finally {
    await parent.close();
  }
}

/** The one rule for id prefixes of images and layers alike, as messages state it. */
const ID_PREFIX_RULE = 'an id prefix needs at least 4 hex digits';
/** An id or id prefix: 4 to 64 hex digits, with or without `b3:`. */
const isIdPrefix = (ref: string) => /^(b3:)?[0-9a-f]{4,64}$/.test(ref);
/** Hex too short to be an id prefix, so the message can say why it names nothing. */
const tooShort = (ref: string) => /^(b3:)?[0-9a-f]{1,3}$/.test(ref);
/** Whether `ref` is a well-formed NAME:TAG (or NAME). */
const isTag = (ref: string) => {
  try {
    parseTag(ref);
    return true;
  } catch {
    return false;
  }
};

function checkedTreeBytes(d: Digest, bytes: Buffer | undefined): Buffer {
  if (!bytes) throw new StoreError('OBJECT_MISSING', `tree ${d} is missing`);
  if (hashBytes(bytes) !== d) throw new StoreError('OBJECT_CORRUPT', `tree ${d} is damaged: its bytes do not hash to its name; "strata verify" says more`);
  return bytes;
}
