import type {Digest} from '../objects/digest.js';
import {StoreError} from '../errors.js';
import {chainId, decodeImage, type Image} from '../objects/image.js';
import type {ContainerRecord, Store} from '../objects/Store.js';
import {PREFIX, blobKey, digestOf, flatKey, layerKey, pinnedKey, treeKey} from '../index/keys.js';
import {decodeBlobValue, decodeRecord, decodeText} from '../index/values.js';
import {decodeTree} from '../objects/tree.js';

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
  };
  const {index} = store;
  await index.scanEach(PREFIX.blob, (k, v) => {
    const d = digestOf(k, 'blob')!;
    g.blobs.set(d, blobInfo(v, d));
  });
  await index.scanEach(PREFIX.tree, (k, v) => {
    const d = digestOf(k, 'tree')!;
    const {refs, fileBytes} = treeRefs(v, `tree ${d}`);
    g.trees.set(d, refs);
    g.treeBytes.set(d, v.length);
    g.treeFileBytes.set(d, fileBytes);
  });
  await index.scanEach(PREFIX.layer, (k, v) => {
    g.layers.add(digestOf(k, 'layer')!);
    g.recordBytes.set(k, v.length);
  });
  await index.scanEach(PREFIX.image, (k, v) => {
    const d = digestOf(k, 'image')!;
    g.images.set(d, decodeImage(v, `image ${d}`));
    g.recordBytes.set(k, v.length);
  });
  await index.scanEach(PREFIX.flat, (k, v) => {
    g.flats.set(digestOf(k, 'flat')!, decodeText<Digest>(v));
    g.recordBytes.set(k, v.length);
  });
  await index.scanEach(PREFIX.tag, (k, v) => { g.tags.set(k.slice(PREFIX.tag.length), decodeText<Digest>(v)); });
  await index.scanEach(PREFIX.container, (k, v) => {
    g.containers.set(k.slice(PREFIX.container.length), decodeRecord<ContainerRecord>(v));
  });
  await index.scanEach(PREFIX.pin, k => { g.pins.add(pinnedKey(k)); });
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
      if (kind === KIND_DIR) refs.push(treeKey(`b3:${buf.toString('hex', at, at + 32)}` as Digest));
      else if (kind === KIND_FILE || kind === KIND_HARDLINK) {
        refs.push(blobKey(`b3:${buf.toString('hex', at, at + 32)}` as Digest));
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

/** What gc and df need of a blob value. Throws OBJECT_CORRUPT for a value of neither form. */
function blobInfo(v: Buffer, d: Digest): BlobInfo {
  const value = decodeBlobValue(v);
  if (!value) throw new StoreError('OBJECT_CORRUPT', `blob ${d}: its index entry is malformed; "strata verify --repair" removes it`);
  return {size: value.size, file: value.file};
}

/**
 * The edges of the object graph, as index keys: image -> its layers and the flattened
 * stacks of its layer prefixes; layer -> its root tree; flattened stack -> its tree;
 * tree -> its blobs and child trees. Keys of objects the store lacks have no edges.
 */
export function refsOf(g: IndexGraph): (node: string) => string[] {
  return node => {
    const tree = digestOf(node, 'tree');
    if (tree) return g.trees.get(tree) ?? [];
    const layer = digestOf(node, 'layer');
    if (layer) return [treeKey(layer)];
    const id = digestOf(node, 'image');
    if (id) {
      const image = g.images.get(id);
      if (!image) return [];
      const out = image.layers.map(layerKey);
      // A flat record stays exactly when its chain is that of a prefix of a live image.
      let chain: Digest | undefined;
      for (const l of image.layers) {
        chain = chain ? chainId([chain, l]) : l; // chainId, one layer at a time
        if (g.flats.has(chain!)) out.push(flatKey(chain!));
      }
      return out;
    }
    const stack = digestOf(node, 'flat');
    if (stack) {
      const flat = g.flats.get(stack);
      return flat ? [treeKey(flat)] : [];
    }
    return [];
  };
}
