import type {Digest} from '../objects/digest.js';
import {StoreError} from '../errors.js';
import {chainId, decodeImage, type Image} from '../objects/image.js';
import {KEY, type ContainerRecord, type Store} from '../objects/Store.js';
import {decodeTree} from '../objects/tree.js';
import {type ImageSource, sourceBlobs} from '../registry/records.js';

/** Entries read per step of a scan: large enough to amortise the native call, small enough to bound memory. */
const SCAN_STEP = 1000;

/**
 * Calls `each` for every key (and value) under a prefix, in key order, a bounded number
 * of entries at a time: a scan of a million blobs never holds their bytes at once.
 * Flushes the store's pending writes first, so the scan sees them.
 */
export async function scanEach(store: Store, prefix: string, each: (key: string, value: Buffer) => void | Promise<void>): Promise<void> {
  await store.flush();
  const it = store.db.iterator({gte: prefix, lt: `${prefix}\xff`});
  try {
    for (;;) {
      const step = await it.nextv(SCAN_STEP);
      if (step.length === 0) return;
      for (const [k, v] of step) await each(k, v);
    }
  } catch (err) {
    throw indexError(err);
  } finally {
    await it.close();
  }
}

/** Turns LevelDB's corruption and I/O errors into a coded error that names the index; rethrows the rest. */
export function indexError(err: unknown): unknown {
  const code = (err as {code?: string}).code;
  if (typeof code === 'string' && /^LEVEL_(CORRUPTION|IO_ERROR|ITERATOR_NOT_OPEN|DATABASE_NOT_OPEN)/.test(code))
    return new StoreError('INDEX_CORRUPT', `the index cannot be read (${(err as Error).message}); "strata verify --repair" rebuilds it`, {cause: err});
  return err;
}

/** A blob as the index records it: its size and whether its bytes are in an object file. */
export interface BlobInfo {
  readonly size: number;
  readonly file: boolean;
}

/** What a content scan reads: tree edges and stored sizes, enough to mark and to count. */
export interface IndexGraph {
  readonly blobs: Map<Digest, BlobInfo>;
  /** tree -> the index keys it names (`b:…` for files and hardlinks, `t:…` for directories). */
  readonly trees: Map<Digest, string[]>;
  /** Encoded size of each tree. */
  readonly treeBytes: Map<Digest, number>;
  /** File bytes of each tree (regular files only: a hardlink repeats a file's bytes, it does not add any). */
  readonly treeFileBytes: Map<Digest, number>;
  readonly layers: Set<Digest>;
  readonly images: Map<Digest, Image>;
  /** chain id -> merged tree. */
  readonly flats: Map<Digest, Digest>;
  readonly tags: Map<string, Digest>;
  readonly containers: Map<string, ContainerRecord>;
  /** pinned index keys (`i:…`, `l:…`). */
  readonly pins: Set<string>;
  /** Stored size of each layer, image and flat record, by index key. */
  readonly recordBytes: Map<string, number>;
  /** Pulled images' source records: image -> the blobs holding the original manifest, config, index. */
  readonly sources: Map<Digest, {readonly blobs: Digest[]; readonly config: string}>;
  /** Registry metadata about a layer (`rd:`, `rb:` keys) -> that layer. */
  readonly layerMeta: Map<string, Digest>;
  /** sha256 digests with recorded locations (`rs:`). */
  readonly blobRepos: Set<string>;
}

/**
 * Reads the whole index in one pass per key prefix (sequential scans, no lookup per
 * object). Throws OBJECT_CORRUPT when a tree or an image does not decode: a collector
 * must not guess what an unreadable object references.
 */
export async function loadGraph(store: Store): Promise<IndexGraph> {
  const g: IndexGraph = {
    blobs: new Map(), trees: new Map(), treeBytes: new Map(), treeFileBytes: new Map(), layers: new Set(),
    images: new Map(), flats: new Map(), tags: new Map(), containers: new Map(), pins: new Set(), recordBytes: new Map(),
    sources: new Map(), layerMeta: new Map(), blobRepos: new Set(),
  };
  await scanEach(store, KEY.blob, (k, v) => {
    g.blobs.set(k.slice(KEY.blob.length) as Digest, blobInfo(v));
  });
  await scanEach(store, KEY.tree, (k, v) => {
    const d = k.slice(KEY.tree.length) as Digest;
    const {refs, fileBytes} = treeRefs(v, `tree ${d}`);
    g.trees.set(d, refs);
    g.treeBytes.set(d, v.length);
    g.treeFileBytes.set(d, fileBytes);
  });
  await scanEach(store, KEY.layer, (k, v) => {
    g.layers.add(k.slice(KEY.layer.length) as Digest);
    g.recordBytes.set(k, v.length);
  });
  await scanEach(store, KEY.image, (k, v) => {
    const d = k.slice(KEY.image.length) as Digest;
    g.images.set(d, decodeImage(v, `image ${d}`));
    g.recordBytes.set(k, v.length);
  });
  await scanEach(store, KEY.flat, (k, v) => {
    g.flats.set(k.slice(KEY.flat.length) as Digest, v.toString('utf8') as Digest);
    g.recordBytes.set(k, v.length);
  });
  await scanEach(store, KEY.tag, (k, v) => { g.tags.set(k.slice(KEY.tag.length), v.toString('utf8') as Digest); });
  await scanEach(store, KEY.container, (k, v) => {
    g.containers.set(k.slice(KEY.container.length), JSON.parse(v.toString('utf8')) as ContainerRecord);
  });
  await scanEach(store, KEY.pin, k => { g.pins.add(k.slice(KEY.pin.length)); });
  await scanEach(store, KEY.imageSource, (k, v) => {
    const src = JSON.parse(v.toString('utf8')) as ImageSource;
    g.sources.set(k.slice(KEY.imageSource.length) as Digest, {blobs: sourceBlobs(src), config: src.config.digest});
    g.recordBytes.set(k, v.length);
  });
  await scanEach(store, KEY.layerBlob, (k, v) => {
    g.layerMeta.set(k, k.slice(KEY.layerBlob.length, k.lastIndexOf(':')) as Digest);
    g.recordBytes.set(k, v.length);
  });
  await scanEach(store, KEY.blobLayer, (k, v) => {
    g.layerMeta.set(k, v.toString('utf8') as Digest);
    g.recordBytes.set(k, v.length);
  });
  await scanEach(store, KEY.blobRepos, (k, v) => {
    g.blobRepos.add(k.slice(KEY.blobRepos.length));
    g.recordBytes.set(k, v.length);
  });
  return g;
}

const KIND_FILE = 1, KIND_DIR = 2, KIND_HARDLINK = 4;
const MAGIC = 0x53545254; // "STRT"

/**
 * The index keys a tree names and its regular files' bytes, read straight from the
 * canonical encoding (docs/format.md, "tree") without building entry objects: gc reads
 * every tree of the store, and this is several times faster than `decodeTree`. A tree
 * whose encoding it cannot walk goes through `decodeTree`, which says what is wrong
 * (OBJECT_CORRUPT). The gc tests compare both readings.
 */
export function treeRefs(buf: Buffer, what: string): {refs: string[]; fileBytes: number} {
  try {
    if (buf.readUInt32BE(0) !== MAGIC || buf[4] !== 1) throw new RangeError('not a tree');
    let at = skipMeta(buf, 6);
    const count = buf.readUInt32BE(at);
    at += 4;
    const refs: string[] = [];
    let fileBytes = 0;
    for (let i = 0; i < count; i++) {
      at += 2 + buf.readUInt16BE(at); // name
      const kind = buf[at++]!;
      at = skipMeta(buf, at);
      const size = Number(buf.readBigInt64BE(at));
      at += 8;
      if (kind === KIND_DIR) refs.push(`${KEY.tree}b3:${buf.toString('hex', at, at + 32)}`);
      else if (kind === KIND_FILE || kind === KIND_HARDLINK) {
        refs.push(`${KEY.blob}b3:${buf.toString('hex', at, at + 32)}`);
        if (kind === KIND_FILE) fileBytes += size;
      }
      at += 32;
      at += 4 + buf.readUInt32BE(at) + 8; // target, devmajor, devminor
    }
    if (at !== buf.length) throw new RangeError('trailing bytes');
    return {refs, fileBytes};
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    decodeTree(buf, what); // throws OBJECT_CORRUPT with the reason
    throw new StoreError('OBJECT_CORRUPT', `${what} cannot be read`);
  }
}

function skipMeta(buf: Buffer, at: number): number {
  at += 20; // mode, uid, gid, mtime
  const xattrs = buf.readUInt16BE(at);
  at += 2;
  for (let i = 0; i < xattrs; i++) {
    at += 2 + buf.readUInt16BE(at);
    at += 4 + buf.readUInt32BE(at);
  }
  return at;
}

export function blobInfo(v: Buffer): BlobInfo {
  return v[0] === 0 ? {size: v.length - 1, file: false} : {size: Number(v.readBigUInt64BE(1)), file: true};
}

/**
 * The edges of the object graph, as index keys: image -> its layers, the flattened
 * stacks of its layer prefixes, and its source record (a pulled image); source record ->
 * the blobs of the original manifest, config and index; layer -> its root tree; flattened stack -> its tree;
 * tree -> its blobs and child trees. Keys of objects the store lacks have no edges.
 */
export function refsOf(g: IndexGraph): (node: string) => string[] {
  return node => {
    if (node.startsWith(KEY.tree)) return g.trees.get(node.slice(KEY.tree.length) as Digest) ?? [];
    if (node.startsWith(KEY.layer)) return [KEY.tree + node.slice(KEY.layer.length)];
    if (node.startsWith(KEY.image)) {
      const image = g.images.get(node.slice(KEY.image.length) as Digest);
      if (!image) return [];
      const out = image.layers.map(l => KEY.layer + l);
      const id = node.slice(KEY.image.length) as Digest;
      if (g.sources.has(id)) out.push(KEY.imageSource + id);
      // A flat record stays exactly when its chain is that of a prefix of a live image.
      let chain: Digest | undefined;
      for (const l of image.layers) {
        chain = chain ? chainId([chain, l]) : l; // chainId, one layer at a time
        if (g.flats.has(chain!)) out.push(KEY.flat + chain);
      }
      return out;
    }
    if (node.startsWith(KEY.imageSource)) return (g.sources.get(node.slice(KEY.imageSource.length) as Digest)?.blobs ?? []).map(b => KEY.blob + b);
    if (node.startsWith(KEY.flat)) {
      const tree = g.flats.get(node.slice(KEY.flat.length) as Digest);
      return tree ? [KEY.tree + tree] : [];
    }
    return [];
  };
}
