import {createReadStream} from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {Readable} from 'node:stream';
import {Level} from 'level';
import {type Digest, createHasher, ensureHasher, hashBytes, isDigest, shortDigest} from './digest.js';
import {StoreError, isLevelLocked, isNoSpace, rethrowNoSpace} from '../errors.js';
import {type Image, chainId, decodeImage, hashImage} from './image.js';
import {type TagRef, parseTag} from './refs.js';
import {type LockWait, lockTimeoutFromEnv, recordHolder, waitForLock} from './storeLock.js';
import {type BlobDirs, type FileBlob, READ_WHOLE_MAX, objectPathIn, tmpPathIn} from './storeFileSync.js';
import {type Tree, decodeTree, hashTree} from './tree.js';
import {UpperForm} from '../containers/upperForm.js';
import {upgradeStore} from './upgradeStore.js';

/**
 * The store format this code writes; a store with a higher number is refused, one with a
 * lower number is upgraded when opened (`upgradeStore.ts`). 2: writable layers in the
 * kernel overlayfs form (`upperForm.ts`).
 */
export const FORMAT_VERSION = 2;

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


/** Pending index writes are flushed past either bound (measured: 1k–10k ops per batch is fastest). */
const FLUSH_OPS = 5000;
const FLUSH_BYTES = 32 * 1024 * 1024;

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
  /** Overrides `INLINE_MAX` for this handle; for benchmarks and tests that need both paths. */
  readonly inlineMax?: number;
}

type LevelDB = Level<string, Buffer>;
type Op = {type: 'put'; key: string; value: Buffer} | {type: 'del'; key: string};

const enc = (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8');
const dec = <T>(b: Buffer): T => JSON.parse(b.toString('utf8')) as T;

/** Key prefixes of the index (docs/format.md, "index keys"). */
export const KEY = {
  blob: 'b:', tree: 't:', layer: 'l:', image: 'i:', tag: 'tag:', container: 'c:', containerName: 'cn:', flat: 'f:', pin: 'pin:', lease: 'lease:',
} as const;

/** The index value of a blob kept as an object file: tag byte 1, then its size (u64 BE). Inline blobs are 0 + their bytes. */
export function fileBlobValue(size: number): Buffer {
  const value = Buffer.alloc(9);
  value.writeUInt8(1, 0);
  value.writeBigUInt64BE(BigInt(size), 1);
  return value;
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
  /** Content writes not yet in LevelDB, key -> value (content is only ever put). */
  private pending = new Map<string, Buffer>();
  private pendingBytes = 0;
  /** The batch being written by `flush`, still readable until LevelDB has it. */
  private writing: Map<string, Buffer> | undefined;
  private readonly known = new Set<string>();
  private readonly treeCache = new Map<Digest, Tree>();
  private readonly madeDirs = new Set<string>();
  private readonly counters = {objects: 0, blobBytes: 0};

  /** How this store's writable layers are kept on disk (whiteouts, opaque directories). */
  readonly upper: UpperForm;

  private constructor(readonly dir: string, readonly db: LevelDB, private readonly inlineMax: number, userxattr: boolean) {
    this.upper = new UpperForm(dir, userxattr);
  }

  /** Opens (or with `create`, creates) the store in `dir`. Throws STORE_MISSING, NOT_A_STORE, STORE_VERSION, STORE_LOCKED. */
  static async open(dir: string, options: OpenOptions = {}): Promise<Store> {
    dir = path.resolve(dir);
    await ensureHasher();
    let marker = await readMarker(dir);
    if (!marker && options.create) {
      const entries = await fs.readdir(dir).catch(() => [] as string[]);
      if (entries.length > 0) throw new StoreError('NOT_A_STORE', `${dir} is not empty and is not a strata store`);
      await fs.mkdir(path.join(dir, 'objects'), {recursive: true});
      await fs.mkdir(path.join(dir, 'tmp'), {recursive: true});
      await fs.mkdir(path.join(dir, 'containers'), {recursive: true});
      // Without root, trusted.* xattrs cannot be set: the rootless overlayfs form (userxattr).
      marker = {format: FORMAT_VERSION, ...(process.getuid?.() === 0 ? {} : {userxattr: true})};
      await writeMarker(dir, marker);
    } else if (!marker) {
      const exists = await fs.stat(dir).then(() => true, () => false);
      throw exists
        ? new StoreError('NOT_A_STORE', `${dir} is not a strata store (no strata.json); run "strata init" on an empty directory`)
        : new StoreError('STORE_MISSING', `there is no strata store at ${dir}; run "strata init" first`);
    }
    checkFormat(dir, marker);
    const db = await openLevel(dir, path.join(dir, 'index'), options);
    // Read again under the lock: the process we waited for may have upgraded it.
    if (marker.format < FORMAT_VERSION) marker = (await readMarker(dir)) ?? marker;
    checkFormat(dir, marker);
    const store = new Store(dir, db, options.inlineMax ?? INLINE_MAX, marker.userxattr === true);
    if (marker.format < FORMAT_VERSION) {
      try {
        await upgradeStore(store, marker.format);
      } catch (err) {
        await db.close();
        throw err;
      }
      await writeMarker(dir, {...marker, format: FORMAT_VERSION});
    }
    return store;
  }

  /** Flushes pending writes and lets go of the lock. */
  async close(): Promise<void> {
    if (this.db.status !== 'open') return;
    await this.flush();
    await this.db.close();
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
    return this.has(KEY.blob + d);
  }

  /** Stores bytes once; returns their digest. Identical bytes are not written again. */
  async putBlob(data: Buffer): Promise<Digest> {
    const d = hashBytes(data);
    await this.putHashedBlob(d, data);
    return d;
  }

  private async putHashedBlob(d: Digest, data: Buffer): Promise<void> {
    if (await this.hasBlob(d)) return;
    if (data.length <= this.inlineMax) {
      this.queue(KEY.blob + d, Buffer.concat([Buffer.of(0), data]), data.length);
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
      const data = await fs.readFile(hostPath);
      const digest = hashBytes(data);
      await this.putHashedBlob(digest, data);
      return {digest, size: data.length};
    }
    return this.putBlobStream(createReadStream(hostPath, {highWaterMark: 1024 * 1024}));
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
        if (size > this.inlineMax && !(await this.hasBlob(digest))) await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      await fs.rm(tmp, {force: true});
      rethrowNoSpace(err, 'a blob');
    }
    if (await this.hasBlob(digest!)) {
      await fs.rm(tmp, {force: true});
    } else if (size <= this.inlineMax) {
      this.queue(KEY.blob + digest, Buffer.concat([Buffer.of(0), await fs.readFile(tmp)]), size);
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
  async indexFileBlob(blob: FileBlob): Promise<void> {
    const key = KEY.blob + blob.digest;
    if (await this.has(key)) return;
    if (blob.data) {
      this.queue(key, Buffer.concat([Buffer.of(0), blob.data]), blob.size);
    } else {
      this.queue(key, fileBlobValue(blob.size), blob.size);
    }
  }

  private async placeObject(tmp: string, d: Digest, size: number): Promise<void> {
    const dest = this.objectPath(d);
    const parent = path.dirname(dest);
    if (!this.madeDirs.has(parent)) {
      await fs.mkdir(parent, {recursive: true});
      this.madeDirs.add(parent);
    }
    await fs.rename(tmp, dest);
    this.queue(KEY.blob + d, fileBlobValue(size), size);
  }

  /** Size of a blob and where its bytes are. Throws OBJECT_MISSING. */
  async statBlob(d: Digest): Promise<{size: number; inline: boolean}> {
    const v = await this.getRaw(KEY.blob + d);
    if (!v) throw new StoreError('OBJECT_MISSING', `blob ${d} is missing`);
    return v[0] === 0 ? {size: v.length - 1, inline: true} : {size: Number(v.readBigUInt64BE(1)), inline: false};
  }

  /**
   * Where a blob is, without a thread hop: its bytes when inline, else only its size (the
   * bytes are in `objectPath`). For walks that ask about every file of a tree (a metadata
   * image of 100,000 files): a point lookup in LevelDB's block cache takes a few µs, the
   * async `statBlob` several times that. Throws OBJECT_MISSING.
   */
  blobSync(d: Digest): {size: number; data?: Buffer} {
    const key = KEY.blob + d;
    const v = this.pending.get(key) ?? this.writing?.get(key) ?? this.db.getSync(key);
    if (!v) throw new StoreError('OBJECT_MISSING', `blob ${d} is missing`);
    return v[0] === 0 ? {size: v.length - 1, data: v.subarray(1)} : {size: Number(v.readBigUInt64BE(1))};
  }

  /** A blob's bytes in memory. Throws OBJECT_MISSING. */
  async readBlob(d: Digest): Promise<Buffer> {
    const v = await this.getRaw(KEY.blob + d);
    if (!v) throw new StoreError('OBJECT_MISSING', `blob ${d} is missing`);
    if (v[0] === 0) return v.subarray(1);
    try {
      return await fs.readFile(this.objectPath(d));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new StoreError('OBJECT_MISSING', `blob ${d} is indexed but its object file is missing`, {cause: err});
      throw err;
    }
  }

  /** A blob's bytes as a stream (large blobs are not read into memory). Throws OBJECT_MISSING. */
  async openBlob(d: Digest): Promise<Readable> {
    const v = await this.getRaw(KEY.blob + d);
    if (!v) throw new StoreError('OBJECT_MISSING', `blob ${d} is missing`);
    if (v[0] === 0) return Readable.from([v.subarray(1)]);
    const file = this.objectPath(d);
    try {
      await fs.access(file);
    } catch (err) {
      throw new StoreError('OBJECT_MISSING', `blob ${d} is indexed but its object file is missing`, {cause: err});
    }
    return createReadStream(file);
  }

  /** Objects and blob bytes this handle has added so far; differences measure one operation. */
  writeCounters(): {objects: number; blobBytes: number} {
    return {...this.counters};
  }

  // ---- trees -------------------------------------------------------------------------

  /** Stores a tree (entries sorted, names valid) once; returns its digest. */
  async putTree(tree: Tree): Promise<Digest> {
    const {digest, bytes} = hashTree(tree);
    if (!(await this.has(KEY.tree + digest))) this.queue(KEY.tree + digest, bytes);
    this.cacheTree(digest, tree);
    return digest;
  }

  /** Reads a tree; trees never change, so they are cached. Throws OBJECT_MISSING, OBJECT_CORRUPT. */
  async getTree(d: Digest): Promise<Tree> {
    const cached = this.treeCache.get(d);
    if (cached) return cached;
    const bytes = await this.getRaw(KEY.tree + d);
    if (!bytes) throw new StoreError('OBJECT_MISSING', `tree ${d} is missing`);
    const tree = decodeTree(bytes, `tree ${d}`);
    this.cacheTree(d, tree);
    return tree;
  }

  private cacheTree(d: Digest, tree: Tree): void {
    if (this.treeCache.size >= TREE_CACHE_MAX) this.treeCache.delete(this.treeCache.keys().next().value!);
    this.treeCache.set(d, tree);
  }

  // ---- layers ------------------------------------------------------------------------

  /** Records a root tree as a layer (its id is the tree's digest) and commits durably. */
  async putLayer(record: LayerRecord): Promise<void> {
    if (!(await this.has(KEY.layer + record.id))) await this.commit([{type: 'put', key: KEY.layer + record.id, value: enc(record)}]);
  }

  async getLayer(id: Digest): Promise<LayerRecord | undefined> {
    const v = await this.getRaw(KEY.layer + id);
    return v && dec<LayerRecord>(v);
  }

  async listLayers(): Promise<LayerRecord[]> {
    return (await this.scan(KEY.layer)).map(([, v]) => dec<LayerRecord>(v));
  }

  /** Finds a layer by full id or unique hex prefix. Throws UNKNOWN_LAYER, AMBIGUOUS_ID. */
  async resolveLayer(ref: string): Promise<LayerRecord> {
    const id = await this.resolvePrefix(KEY.layer, ref, 'layer');
    if (!id) throw new StoreError('UNKNOWN_LAYER', `there is no layer "${ref}"`);
    return (await this.getLayer(id))!;
  }

  // ---- images and tags ----------------------------------------------------------------

  /** Stores an image (its layers must exist) and, with `tag`, points the tag at it, atomically. */
  async putImage(image: Image, tag?: TagRef): Promise<Digest> {
    for (const l of image.layers)
      if (!(await this.has(KEY.layer + l))) throw new StoreError('UNKNOWN_LAYER', `image names layer ${l}, which the store does not have`);
    const {digest, bytes} = hashImage(image);
    const ops: Op[] = [{type: 'put', key: KEY.image + digest, value: bytes}];
    if (tag) ops.push({type: 'put', key: KEY.tag + tag, value: Buffer.from(digest)});
    await this.commit(ops);
    return digest;
  }

  async getImage(d: Digest): Promise<Image | undefined> {
    const v = await this.getRaw(KEY.image + d);
    return v && decodeImage(v, `image ${d}`);
  }

  async listImages(): Promise<{id: Digest; image: Image; tags: TagRef[]}[]> {
    const tags = await this.listTags();
    return (await this.scan(KEY.image)).map(([k, v]) => {
      const id = k.slice(KEY.image.length) as Digest;
      return {id, image: decodeImage(v, `image ${id}`), tags: tags.filter(t => t.image === id).map(t => t.tag)};
    });
  }

  async setTag(tag: TagRef, image: Digest): Promise<void> {
    if (!(await this.has(KEY.image + image))) throw new StoreError('UNKNOWN_IMAGE', `there is no image ${image}`);
    await this.commit([{type: 'put', key: KEY.tag + tag, value: Buffer.from(image)}]);
  }

  async getTag(tag: TagRef): Promise<Digest | undefined> {
    const v = await this.getRaw(KEY.tag + tag);
    return v && (v.toString('utf8') as Digest);
  }

  async deleteTag(tag: TagRef): Promise<boolean> {
    if (!(await this.has(KEY.tag + tag))) return false;
    await this.commit([{type: 'del', key: KEY.tag + tag}]);
    return true;
  }

  async listTags(): Promise<{tag: TagRef; image: Digest}[]> {
    return (await this.scan(KEY.tag)).map(([k, v]) => ({tag: k.slice(KEY.tag.length) as TagRef, image: v.toString('utf8') as Digest}));
  }

  /**
   * Finds an image by tag (`name:tag`, `name` meaning `name:latest`), full id, or unique
   * id prefix. Throws UNKNOWN_IMAGE, AMBIGUOUS_ID, BAD_REFERENCE.
   */
  async resolveImage(ref: string): Promise<{id: Digest; image: Image}> {
    let id: Digest | undefined;
    if (/^(b3:)?[0-9a-f]{4,64}$/.test(ref)) id = await this.resolvePrefix(KEY.image, ref, 'image');
    if (!id) {
      let tag: TagRef;
      try {
        tag = parseTag(ref);
      } catch {
        throw new StoreError('UNKNOWN_IMAGE', `there is no image "${ref}"`);
      }
      id = await this.getTag(tag);
    }
    const image = id && (await this.getImage(id));
    if (!id || !image) throw new StoreError('UNKNOWN_IMAGE', `there is no image "${ref}"`);
    return {id, image};
  }

  /** Deletes an image record and the tags that name it (its content stays until gc). */
  async deleteImage(id: Digest): Promise<TagRef[]> {
    const tags = (await this.listTags()).filter(t => t.image === id).map(t => t.tag);
    await this.commit([{type: 'del', key: KEY.image + id}, ...tags.map(t => ({type: 'del' as const, key: KEY.tag + t}))]);
    return tags;
  }

  // ---- flattened stacks ----------------------------------------------------------------

  /** The merged tree memoised for a layer stack, if one was stored (see @strata/union flatten). */
  async getFlat(layers: readonly Digest[]): Promise<Digest | undefined> {
    const chain = chainId(layers);
    if (!chain) return undefined;
    const v = await this.getRaw(KEY.flat + chain);
    return v && (v.toString('utf8') as Digest);
  }

  async putFlat(layers: readonly Digest[], tree: Digest): Promise<void> {
    const chain = chainId(layers);
    if (chain) await this.commit([{type: 'put', key: KEY.flat + chain, value: Buffer.from(tree)}]);
  }

  // ---- containers ----------------------------------------------------------------------

  /** The directory that holds a container's writable layer. */
  upperDir(id: string): string {
    return path.join(this.dir, 'containers', id, 'upper');
  }

  async putContainer(c: ContainerRecord): Promise<void> {
    const ops: Op[] = [{type: 'put', key: KEY.container + c.id, value: enc(c)}];
    if (c.name) ops.push({type: 'put', key: KEY.containerName + c.name, value: Buffer.from(c.id)});
    await this.commit(ops);
  }

  async getContainer(id: string): Promise<ContainerRecord | undefined> {
    const v = await this.getRaw(KEY.container + id);
    return v && dec<ContainerRecord>(v);
  }

  async containerIdByName(name: string): Promise<string | undefined> {
    const v = await this.getRaw(KEY.containerName + name);
    return v?.toString('utf8');
  }

  async listContainers(): Promise<ContainerRecord[]> {
    return (await this.scan(KEY.container)).map(([, v]) => dec<ContainerRecord>(v));
  }

  /** Removes the record first (atomically), then the writable layer's files. */
  async deleteContainer(c: ContainerRecord): Promise<void> {
    const ops: Op[] = [{type: 'del', key: KEY.container + c.id}];
    if (c.name) ops.push({type: 'del', key: KEY.containerName + c.name});
    await this.commit(ops);
    await fs.rm(path.dirname(this.upperDir(c.id)), {recursive: true, force: true});
  }

  // ---- the index -------------------------------------------------------------------------

  /** Makes pending content writes visible. Content is idempotent, so a partial flush is harmless. */
  async flush(): Promise<void> {
    await this.flushing;
    if (this.flushError) throw this.flushError;
    if (this.pending.size === 0) return;
    const writing = this.pending;
    this.pending = new Map();
    this.pendingBytes = 0;
    this.writing = writing;
    const batch = this.db.batch();
    for (const [key, value] of writing) batch.put(key, value);
    try {
      await batch.write();
    } catch (err) {
      rethrowNoSpace(err, 'the index');
    } finally {
      this.writing = undefined;
    }
    for (const key of writing.keys()) this.known.add(key);
  }

  /** Flushes content, then applies `ops` atomically with fsync: the commit point of a command. */
  async commit(ops: Op[]): Promise<void> {
    await this.flush();
    try {
      await this.db.batch(ops, {sync: true});
    } catch (err) {
      rethrowNoSpace(err, 'the index');
    }
    for (const op of ops) if (op.type === 'del') this.known.delete(op.key);
  }

  /** Every key and value under a prefix, in key order. */
  async scan(prefix: string): Promise<[string, Buffer][]> {
    await this.flush();
    return this.db.iterator({gte: prefix, lt: `${prefix}\xff`}).all();
  }

  async getRaw(key: string): Promise<Buffer | undefined> {
    return this.pending.get(key) ?? this.writing?.get(key) ?? this.db.get(key);
  }

  private async has(key: string): Promise<boolean> {
    if (this.known.has(key) || this.pending.has(key) || this.writing?.has(key)) return true;
    // getSync, not has(): classic-level's has() builds a LevelDB iterator on the main thread
    // (~45 µs each, measured by profiling `npm run bench -- import`), while a point lookup
    // of a key that is mostly in the block cache is a few µs and needs no thread hop.
    const found = this.db.getSync(key) !== undefined;
    if (found) this.known.add(key);
    return found;
  }

  private queue(key: string, value: Buffer, blobSize = 0): void {
    if (this.pending.has(key) || this.writing?.has(key)) return;
    this.counters.objects++;
    this.counters.blobBytes += blobSize;
    this.pending.set(key, value);
    this.pendingBytes += value.length;
    if (this.pending.size >= FLUSH_OPS || this.pendingBytes >= FLUSH_BYTES) void this.flushSoon();
  }

  private flushing: Promise<void> | undefined;
  private flushError: Error | undefined;
  private flushSoon(): void {
    if (this.flushing) return;
    this.flushing = this.flush().finally(() => { this.flushing = undefined; });
    this.flushing.catch(err => { this.flushError = err as Error; }); // the next flush() or commit() reports it
  }

  private async resolvePrefix(prefix: string, ref: string, what: string): Promise<Digest | undefined> {
    const hex = ref.startsWith('b3:') ? ref.slice(3) : ref;
    if (!/^[0-9a-f]{1,64}$/.test(hex)) return undefined;
    const full = `b3:${hex}`;
    if (isDigest(full)) return (await this.has(prefix + full)) ? (full as Digest) : undefined;
    await this.flush();
    const keys = await this.db.keys({gte: prefix + full, lt: `${prefix + full}\xff`, limit: 2}).all();
    if (keys.length > 1) throw new StoreError('AMBIGUOUS_ID', `"${ref}" matches more than one ${what}; give more digits`);
    return keys[0]?.slice(prefix.length) as Digest | undefined;
  }
}

/** Reads `strata.json`; undefined when there is none. Throws NOT_A_STORE when it is unreadable. */
async function readMarker(dir: string): Promise<StoreMarker | undefined> {
  let marker: StoreMarker;
  try {
    marker = JSON.parse(await fs.readFile(path.join(dir, 'strata.json'), 'utf8')) as StoreMarker;
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

/** Writes `strata.json` durably: a temporary file, fsynced, renamed over the old one. */
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
}

/**
 * Opens LevelDB, waiting while another process holds its lock (storeLock.ts). LevelDB
 * admits one process; strata commands are short, so waiting for a turn serialises them
 * without a daemon.
 */
async function openLevel(dir: string, location: string, options: OpenOptions): Promise<LevelDB> {
  const timeoutMs = options.lockTimeoutMs ?? lockTimeoutFromEnv();
  const db = await waitForLock(dir, async () => {
    const db: LevelDB = new Level<string, Buffer>(location, {keyEncoding: 'utf8', valueEncoding: 'buffer'});
    try {
      await db.open();
      return db;
    } catch (err) {
      if (isNoSpace(err))
        throw new StoreError('NO_SPACE', `the disk is full: the index at ${location} needs a little free space to open; free some, then "strata gc" reclaims what a failed write left`, {cause: err});
      if (isLevelLocked(err)) throw err;
      const code = (err as {code?: string}).code;
      if (code === 'LEVEL_DATABASE_NOT_OPEN')
        throw new StoreError('INDEX_CORRUPT', `the index at ${location} cannot be opened (${(err as Error & {cause?: Error}).cause?.message ?? (err as Error).message}); "strata verify --repair" rebuilds it`, {cause: err});
      throw err;
    }
  }, isLevelLocked, {timeoutMs, ...(options.onWait ? {onWait: options.onWait} : {})});
  recordHolder(dir);
  return db;
}
