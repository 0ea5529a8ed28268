import type {Digest} from '../objects/digest.js';
import {StoreError} from '../errors.js';
import {chainId, decodeImage, type Image} from '../objects/image.js';
import type {ContainerRecord, Store} from '../objects/Store.js';
import {REF_BLOB, REF_TREE, forEachTreeRef, treeRefsAt} from '../objects/tree.js';
import {PREFIX, blobKey, containerKey, digestOf, flatKey, imageKey, imageSourceKey, layerKey, layerOfLayerBlobKey, parseKey, pinnedKey, treeKey} from '../index/keys.js';
import {decodeBlobValue, decodeRecord, decodeText} from '../index/values.js';
import {type ImageSource, sourceBlobs} from '../registry/records.js';
import type {EdgeSink} from './gc.js';

/**
 * What references what, as read from the index: enough for `edgesOf`. Nodes of the graph
 * are index keys (index/keys.ts). gc and df fill it with `loadGraph`; verify fills it with
 * the entries it has checked, so all three follow the same edges.
 */
export interface ObjectGraph {
  /** tree -> the index keys it names (`b:…` for files and hardlinks, `t:…` for directories). */
  readonly trees: TreeRefs;
  readonly images: Map<Digest, Image>;
  /** chain id -> merged tree. */
  readonly flats: Map<Digest, Digest>;
  /** `name:tag` -> image. */
  readonly tags: Map<string, Digest>;
  readonly containers: Map<string, ContainerRecord>;
  /** container name -> container id. */
  readonly containerNames: Map<string, string>;
  /** Pulled images' source records: image -> the blobs of the original manifest, config, index. */
  readonly sources?: Map<Digest, {readonly blobs: Digest[]; readonly config: string}>;
}

/**
 * The edges of the object graph, its one definition: image -> its layers and the
 * flattened stacks of its layer prefixes; layer -> its root tree; flattened stack -> its
 * tree; tree -> its blobs and child trees; image -> its source record (a pulled image) ->
 * the blobs of its original manifest, config and index; tag -> its image; container -> its image;
 * container name -> its container; pin -> what it pins. Objects the graph lacks have no edges.
 */
export function edgesOf(g: ObjectGraph): (node: string) => readonly string[] {
  const each = forEachEdge(g);
  return node => {
    if (node.startsWith(PREFIX.blob)) return []; // the leaves, most of the nodes: no parse
    const out: string[] = [];
    each(node, {key: k => { out.push(k); }, blobAt: (buf, at) => { out.push(blobKey(`b3:${buf.toString('hex', at, at + 32)}` as Digest)); }});
    return out;
  };
}

/** `edgesOf`, each edge given to a sink: a tree's blobs as digest bytes in its encoding (gc's mark). */
export function forEachEdge(g: ObjectGraph): (node: string, sink: EdgeSink) => void {
  return (node, sink) => {
    if (node.startsWith(PREFIX.blob)) return; // the leaves, most of the nodes: no parse
    const key = parseKey(node);
    switch (key?.kind) {
      case 'tree': {
        const trees = g.trees;
        if (trees instanceof TreeTable) trees.visit(key.id as Digest, sink);
        else for (const r of trees.get(key.id as Digest) ?? []) sink.key(r);
        return;
      }
      case 'layer': return sink.key(treeKey(key.id as Digest));
      case 'image': {
        const image = g.images.get(key.id as Digest);
        if (!image) return;
        for (const l of image.layers) sink.key(layerKey(l));
        if (g.sources?.has(key.id as Digest)) sink.key(imageSourceKey(key.id as Digest));
        // A flat record stays exactly when its chain is that of a prefix of a live image.
        let chain: Digest | undefined;
        for (const l of image.layers) {
          chain = chain ? chainId([chain, l])! : l; // chainId, one layer at a time
          if (g.flats.has(chain)) sink.key(flatKey(chain));
        }
        return;
      }
      case 'flat': {
        const tree = g.flats.get(key.id as Digest);
        if (tree) sink.key(treeKey(tree));
        return;
      }
      case 'tag': {
        const image = g.tags.get(key.id);
        if (image) sink.key(imageKey(image));
        return;
      }
      case 'container': {
        const c = g.containers.get(key.id);
        if (c) sink.key(imageKey(c.image));
        return;
      }
      case 'containerName': {
        const id = g.containerNames.get(key.id);
        if (id) sink.key(containerKey(id));
        return;
      }
      case 'pin': return sink.key(pinnedKey(node));
      case 'imageSource': {
        for (const b of g.sources?.get(key.id as Digest)?.blobs ?? []) sink.key(blobKey(b));
        return;
      }
      default: return;
    }
  };
}

/** Trees by digest, each with the index keys it names: a Map, or a `TreeTable` that reads them when asked. */
export interface TreeRefs {
  get(d: Digest): readonly string[] | undefined;
  has(d: Digest): boolean;
}

/**
 * The trees a scan read. Held as their refs (df, which needs every tree's), or as their
 * encodings, read into refs only when `get` asks (gc: a mark asks for each live tree once,
 * and the garbage ones, often most of what a gc reads, are never decoded). A tree that does
 * not decode throws OBJECT_CORRUPT when it is asked for, so a live one stops gc as before;
 * an unreachable one is garbage whatever it names.
 */
export class TreeTable implements TreeRefs {
  private readonly byDigest = new Map<Digest, Buffer | string[]>();

  /** A tree as its encoding, read when asked. */
  addEncoded(d: Digest, encoding: Buffer): void {
    this.byDigest.set(d, encoding);
  }

  /** A tree as the keys it names. */
  addRefs(d: Digest, refs: string[]): void {
    this.byDigest.set(d, refs);
  }

  has(d: Digest): boolean {
    return this.byDigest.has(d);
  }

  get(d: Digest): readonly string[] | undefined {
    const v = this.byDigest.get(d);
    if (v === undefined || Array.isArray(v)) return v;
    return treeRefs(v, `tree ${d}`).refs; // not kept: each live tree is followed once
  }

  /** Gives a tree's refs to a mark's sink: child trees as keys, blobs as digest bytes of its encoding. Throws OBJECT_CORRUPT. */
  visit(d: Digest, sink: EdgeSink): void {
    const v = this.byDigest.get(d);
    if (v === undefined) return;
    if (Array.isArray(v)) {
      for (const r of v) sink.key(r);
      return;
    }
    const {out, count} = treeRefsAt(v, `tree ${d}`, []);
    for (let i = 0; i < count; i += 3) {
      const at = out[i + 1]!;
      if (out[i] === REF_TREE) sink.key(treeKey(`b3:${v.toString('hex', at, at + 32)}` as Digest));
      else sink.blobAt(v, at);
    }
  }

  /**
   * A tree held as its encoding with what it references, as `treeRefsAt` gives them (into
   * `out`); undefined for a tree it lacks or holds as refs. Throws OBJECT_CORRUPT.
   */
  encodedRefs(d: Digest, out: number[]): {buf: Buffer; count: number} | undefined {
    const v = this.byDigest.get(d);
    if (v === undefined || Array.isArray(v)) return undefined;
    return {buf: v, count: treeRefsAt(v, `tree ${d}`, out).count};
  }

  get size(): number {
    return this.byDigest.size;
  }
}

/** A blob as the index records it: its size and whether its bytes are in an object file. */
export interface BlobInfo {
  readonly size: number;
  readonly file: boolean;
}

/** The blobs a scan read, with their info (df; gc scans blob keys on its own, after its first mark). */
export type BlobTable = Pick<ReadonlyMap<Digest, BlobInfo>, 'has' | 'get' | 'keys' | 'size' | typeof Symbol.iterator>;

/** What a content scan reads: the object graph and stored sizes, enough to mark and to count. */
export interface IndexGraph extends ObjectGraph {
  readonly trees: TreeTable;
  readonly blobs: BlobTable;
  /** Encoded size of each tree. */
  readonly treeBytes: Map<Digest, number>;
  /** File bytes of each tree (regular files only: a hardlink repeats a file's bytes, it does not add any); empty when trees are read lazily. */
  readonly treeFileBytes: Map<Digest, number>;
  readonly layers: Set<Digest>;
  /** pinned index keys (`i:…`, `l:…`). */
  readonly pins: Set<string>;
  /** Stored size of each layer, image and flat record, by index key. */
  readonly recordBytes: Map<string, number>;
  readonly sources: Map<Digest, {readonly blobs: Digest[]; readonly config: string}>;
  /** Registry metadata about a layer (`rd:`, `rb:` keys) -> that layer. */
  readonly layerMeta: Map<string, Digest>;
  /** sha256 digests with recorded locations (`rs:`). */
  readonly blobRepos: Set<string>;
  /** `lease:` records, which stores kept in the index before leases moved to files (leases.ts). */
  readonly oldLeases: string[];
}

/**
 * Reads the whole index in one pass per key prefix, the small record families in one range
 * together (sequential scans, no lookup per object). Throws OBJECT_CORRUPT when a tree or an
 * image does not decode: a collector must not guess what an unreadable object references.
 * The blobs, most of the index, are scanned at the same time as the other families: LevelDB
 * reads them on libuv's threads while this thread reads the trees.
 *
 * For gc (`blobs: false`, `decodeTrees: false`): no blobs (`blobs` stays empty: gc scans
 * their keys itself, after its first mark, keeping only those the mark did not reach), and
 * trees kept encoded, read when a mark reaches them (`TreeTable`), so garbage trees are
 * never decoded.
 */
export async function loadGraph(store: Store, options: {blobs?: boolean; decodeTrees?: boolean} = {}): Promise<IndexGraph> {
  const read = new Map<Digest, BlobInfo>();
  const g: IndexGraph = {
    blobs: read, trees: new TreeTable(), treeBytes: new Map(), treeFileBytes: new Map(), layers: new Set(),
    images: new Map(), flats: new Map(), tags: new Map(), containers: new Map(), containerNames: new Map(), pins: new Set(), recordBytes: new Map(),
    sources: new Map(), layerMeta: new Map(), blobRepos: new Set(), oldLeases: [],
  };
  const blobs = options.blobs === false ? undefined : store.index.scanEach(PREFIX.blob, (k, v) => {
    const d = digestOf(k, 'blob')!;
    read.set(d, blobInfo(v, d));
  });
  await Promise.all([blobs, loadOthers(store, g, options.decodeTrees ?? true)]);
  return g;
}

/**
 * The families other than blobs, trees and tags, which lie between these two keys (keys.ts:
 * no prefix is a prefix of another): `loadGraph` reads them in one scan, each entry by its
 * family, where a scan each made 11 trips to LevelDB's thread one after another.
 */
const RECORDS_FROM = 'c:', RECORDS_TO = 't:';
for (const p of Object.values(PREFIX))
  if (p !== PREFIX.blob && p !== PREFIX.tree && p !== PREFIX.tag && !(p >= RECORDS_FROM && p < RECORDS_TO))
    throw new Error(`assertion failed: the key family ${p} is outside loadGraph's scan of records`);

/** `loadGraph`'s scans of every family but the blobs: the trees, the records and the tags, side by side. */
async function loadOthers(store: Store, g: IndexGraph, decodeTrees: boolean): Promise<void> {
  const {index} = store;
  const trees = index.scanEach(PREFIX.tree, (k, v) => {
    const d = digestOf(k, 'tree')!;
    g.treeBytes.set(d, v.length);
    if (!decodeTrees) return g.trees.addEncoded(d, v);
    const {refs, fileBytes} = treeRefs(v, `tree ${d}`);
    g.trees.addRefs(d, refs);
    g.treeFileBytes.set(d, fileBytes);
  });
  const records = index.scanRange(RECORDS_FROM, RECORDS_TO, (k, v) => {
    switch (parseKey(k)?.kind) {
      case 'layer':
        g.layers.add(digestOf(k, 'layer')!);
        g.recordBytes.set(k, v.length);
        return;
      case 'image': {
        const d = digestOf(k, 'image')!;
        g.images.set(d, decodeImage(v, `image ${d}`));
        g.recordBytes.set(k, v.length);
        return;
      }
      case 'flat':
        g.flats.set(digestOf(k, 'flat')!, decodeText<Digest>(v));
        g.recordBytes.set(k, v.length);
        return;
      case 'container':
        g.containers.set(k.slice(PREFIX.container.length), decodeRecord<ContainerRecord>(v));
        return;
      case 'containerName':
        g.containerNames.set(k.slice(PREFIX.containerName.length), decodeText(v));
        return;
      case 'pin':
        g.pins.add(pinnedKey(k));
        return;
      case 'imageSource': {
        const src = decodeRecord<ImageSource>(v);
        g.sources.set(k.slice(PREFIX.imageSource.length) as Digest, {blobs: sourceBlobs(src), config: src.config.digest});
        g.recordBytes.set(k, v.length);
        return;
      }
      case 'layerBlob':
        g.layerMeta.set(k, layerOfLayerBlobKey(k));
        g.recordBytes.set(k, v.length);
        return;
      case 'blobLayer':
        g.layerMeta.set(k, decodeText<Digest>(v));
        g.recordBytes.set(k, v.length);
        return;
      case 'blobRepos':
        g.blobRepos.add(k.slice(PREFIX.blobRepos.length));
        g.recordBytes.set(k, v.length);
        return;
      case 'lease':
        g.oldLeases.push(k);
        return;
      default:
        return; // a key of no family: never removed (verify names it)
    }
  });
  const tags = index.scanEach(PREFIX.tag, (k, v) => { g.tags.set(k.slice(PREFIX.tag.length), decodeText<Digest>(v)); });
  await Promise.all([trees, records, tags]);
}

/** The roots as the index holds them now: tags, containers and their names, pins (small families, scanned). */
export async function loadRoots(store: Store): Promise<Pick<IndexGraph, 'tags' | 'containers' | 'containerNames' | 'pins'>> {
  const roots = {tags: new Map<string, Digest>(), containers: new Map<string, ContainerRecord>(), containerNames: new Map<string, string>(), pins: new Set<string>()};
  const {index} = store;
  await index.scanEach(PREFIX.tag, (k, v) => { roots.tags.set(k.slice(PREFIX.tag.length), decodeText<Digest>(v)); });
  await index.scanEach(PREFIX.container, (k, v) => { roots.containers.set(k.slice(PREFIX.container.length), decodeRecord<ContainerRecord>(v)); });
  await index.scanEach(PREFIX.containerName, (k, v) => { roots.containerNames.set(k.slice(PREFIX.containerName.length), decodeText(v)); });
  await index.scanEach(PREFIX.pin, k => { roots.pins.add(pinnedKey(k)); });
  return roots;
}

/**
 * Reads one node the graph lacks (a tree, image, flat or source record written after the
 * graph was loaded) from the index into the graph, so `edgesOf` can follow it. For an
 * image, the flattened stacks of its prefixes too. Throws OBJECT_CORRUPT as `loadGraph`.
 */
export function loadNode(store: Store, g: IndexGraph, node: string): void {
  const key = parseKey(node);
  const {index} = store;
  switch (key?.kind) {
    case 'tree': {
      const d = key.id as Digest;
      if (g.trees.has(d)) return;
      const v = index.getSync(node);
      if (v) g.trees.addRefs(d, treeRefs(v, `tree ${d}`).refs);
      return;
    }
    case 'image': {
      const d = key.id as Digest;
      if (!g.images.has(d)) {
        const v = index.getSync(node);
        if (!v) return;
        g.images.set(d, decodeImage(v, `image ${d}`));
      }
      if (!g.sources.has(d)) {
        const src = index.getSync(imageSourceKey(d));
        if (src) {
          const rec = decodeRecord<ImageSource>(src);
          g.sources.set(d, {blobs: sourceBlobs(rec), config: rec.config.digest});
        }
      }
      let chain: Digest | undefined;
      for (const l of g.images.get(d)!.layers) {
        chain = chain ? chainId([chain, l])! : l;
        if (g.flats.has(chain)) continue;
        const flat = index.getSync(flatKey(chain));
        if (flat) g.flats.set(chain, decodeText<Digest>(flat));
      }
      return;
    }
    case 'flat': {
      const d = key.id as Digest;
      if (g.flats.has(d)) return;
      const v = index.getSync(node);
      if (v) g.flats.set(d, decodeText<Digest>(v));
      return;
    }
    case 'imageSource': {
      const d = key.id as Digest;
      if (g.sources.has(d)) return;
      const v = index.getSync(node);
      if (v) {
        const rec = decodeRecord<ImageSource>(v);
        g.sources.set(d, {blobs: sourceBlobs(rec), config: rec.config.digest});
      }
      return;
    }
    default:
      return; // blobs are leaves; layers, tags, containers, pins need nothing beyond their key or the roots
  }
}

/** The index keys an encoded tree names (objects/tree.ts, forEachTreeRef) and its regular files' bytes. Throws OBJECT_CORRUPT. */
export function treeRefs(buf: Buffer, what: string): {refs: string[]; fileBytes: number} {
  const refs: string[] = [];
  const fileBytes = forEachTreeRef(buf, what, (kind, d) => { refs.push(kind === 'tree' ? treeKey(d) : blobKey(d)); });
  return {refs, fileBytes};
}

/** What gc and df need of a blob value. Throws OBJECT_CORRUPT for a value of neither form. */
export function blobInfo(v: Buffer, d: Digest): BlobInfo {
  const value = decodeBlobValue(v);
  if (!value) throw new StoreError('OBJECT_CORRUPT', `blob ${d}: its index entry is malformed; "strata verify --repair" removes it`);
  return {size: value.size, file: value.file};
}
