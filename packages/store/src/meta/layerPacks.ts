import * as fs from 'node:fs';
import * as path from 'node:path';
import {type Digest, digestBytes, digestFromBytes, preferNativeHash} from '../objects/digest.js';
import {rethrowNoSpace} from '../errors.js';
import {INLINE_MAX, type Store} from '../objects/Store.js';
import {checkBlobBytes} from '../objects/verifiedRead.js';
import {packDir, packFiles, packPath, syncAll, touchPack, writeStreamedPack} from './packs.js';
import {KIND_DIR, KIND_FILE, KIND_HARDLINK, TreeCursor} from './treeCursor.js';

/**
 * Layer packs: the small-blob pack of a layer, written when the layer is stored (import,
 * commit, image import, pull), so that the first mount of an image finds its small blobs
 * packed and reads none of them from the index (docs/design.md, "Layer packs"). A layer
 * pack is an ordinary pack (packs.ts: `packs/<pack hex>.erofs` and its `.blobs` list)
 * holding every inline blob the layer's tree names; `packs/<layer hex>.layer` names it
 * (format.md, "Layer packs"). Like every pack it is derived: gc keeps it while its layer's
 * tree is live (sweepDerived), and a build that finds no pack for a blob packs it afresh.
 */

/**
 * Layers with fewer inline blobs than this get no pack of their own: the three fsyncs cost
 * a small commit more than the mount saves, where the blobs go into the image's fresh pack
 * (a read each from the index) and a layer pack slot (MAX_PACKS_PER_IMAGE) is kept free.
 */
export const LAYER_PACK_MIN_BLOBS = 64;

/** `packs/<64 hex>.layer`: the layer's pack, as `strlayr\x01` and the pack's 32-byte digest. */
export function layerPackMarker(store: Store, layer: Digest): string {
  return path.join(packDir(store), `${layer.slice(3)}.layer`);
}

/** The pack a layer's marker names, or undefined when there is no marker or it is not one of ours. */
export function readLayerPack(marker: string): Digest | undefined {
  let b: Buffer;
  try {
    b = fs.readFileSync(marker);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (b.length !== MARKER_MAGIC.length + 32 || !b.subarray(0, MARKER_MAGIC.length).equals(MARKER_MAGIC)) return undefined;
  return digestFromBytes(b.subarray(MARKER_MAGIC.length));
}

/**
 * Writes the pack of the layer whose root tree is `layer` (every inline blob its tree
 * names, read as the pack is written: from the handle's spool of the bytes it stored,
 * which it hashed itself, else from the index, checked against the digest) and the marker
 * naming it, unless the layer has one already (then touched, as a build touches the packs
 * it chooses, so that a gc running now keeps it). Resolves to the pack, or undefined when
 * the layer has fewer than LAYER_PACK_MIN_BLOBS inline blobs.
 *
 * Durable before visible: the pack, its list and the marker are written under tmp/,
 * fsynced together, and renamed in that order; a kill leaves only files in tmp/ (removed
 * by gc) or a pack no marker names yet (removed by gc once older than every process at
 * work). Throws NO_SPACE, OBJECT_MISSING, OBJECT_CORRUPT.
 */
export async function writeLayerPack(store: Store, layer: Digest): Promise<Digest | undefined> {
  return startLayerPack(store, layer)();
}

/**
 * writeLayerPack in two steps: this call writes the files under tmp/ and starts their
 * fsync (throwing what writing throws, before anything else happens), and the function it
 * returns waits for the fsync and renames them. An import commits its layer record in
 * between, so the pack's fsync and the index's go to the disk together.
 */
export function startLayerPack(store: Store, layer: Digest): () => Promise<Digest | undefined> {
  // The bytes of the blobs this handle stored since the last layer: those of this layer, mostly.
  const spool = store.takeInlineSpool();
  const tmp: string[] = [];
  const cleanUp = () => {
    spool?.discard();
    for (const f of tmp) fs.rmSync(f, {force: true});
  };
  try {
    const marker = layerPackMarker(store, layer);
    const existing = readLayerPack(marker);
    if (existing && touchPack(store, existing)) return done(existing, cleanUp);
    const blobs = inlineBlobsOf(store, layer);
    if (blobs.size < LAYER_PACK_MIN_BLOBS) return done(undefined, cleanUp);
    preferNativeHash();
    const sorted = [...blobs.keys()].sort() as Digest[];
    const sizes = sorted.map(d => blobs.get(d)!);
    fs.mkdirSync(packDir(store), {recursive: true});
    const tmpPack = store.tmpPath('pack'), tmpList = store.tmpPath('blobs'), tmpMarker = store.tmpPath('layer');
    tmp.push(tmpPack, tmpList, tmpMarker);
    const read = (i: number) => spool?.read(sorted[i]!.slice(3)) ?? blobBytes(store, sorted[i]!, sizes[i]!);
    const pack = writeStreamedPack(sorted, sizes, read, tmpPack, tmpList);
    spool?.discard();
    fs.writeFileSync(tmpMarker, Buffer.concat([MARKER_MAGIC, digestBytes(pack)]), {mode: 0o444, flag: 'wx'});
    const durable = syncAll([tmpList, tmpPack, tmpMarker]);
    durable.catch(() => {}); // awaited below
    return async () => {
      try {
        await durable;
        for (const f of [...packFiles(store, pack, tmpList, tmpPack), {tmp: tmpMarker, name: marker}]) fs.renameSync(f.tmp, f.name);
        return pack;
      } catch (err) {
        rethrowNoSpace(err, `the small-blob pack of layer ${layer}`);
      } finally {
        cleanUp();
      }
    };
  } catch (err) {
    cleanUp();
    rethrowNoSpace(err, `the small-blob pack of layer ${layer}`);
  }
}

function done(pack: Digest | undefined, cleanUp: () => void): () => Promise<Digest | undefined> {
  cleanUp();
  return async () => pack;
}

/** The pack file of a layer's pack, when the layer has one. */
export function layerPackOf(store: Store, layer: Digest): string | undefined {
  const p = readLayerPack(layerPackMarker(store, layer));
  return p ? packPath(store, p) : undefined;
}

/**
 * Every blob of the tree (digest -> size) that is small enough to be inline. Their place is
 * not looked up here (that would read each value twice): a store's blobs up to INLINE_MAX
 * are inline, and one that is an object file (a handle opened with a smaller inlineMax) is
 * read from its file, so the pack holds its bytes all the same.
 */
function inlineBlobsOf(store: Store, root: Digest): Map<Digest, number> {
  const blobs = new Map<Digest, number>();
  const walk = (d: Digest) => {
    const c = new TreeCursor(store.treeBytesSync(d), `tree ${d}`);
    while (c.next()) {
      if (c.kind === KIND_DIR) walk(`b3:${c.refHex()}` as Digest);
      else if ((c.kind === KIND_FILE || c.kind === KIND_HARDLINK) && c.size > 0 && c.size <= INLINE_MAX) blobs.set(`b3:${c.refHex()}` as Digest, c.size);
    }
  };
  walk(root);
  return blobs;
}

/** A blob's bytes, checked against its digest (OBJECT_CORRUPT): damaged bytes are never packed. */
function blobBytes(store: Store, d: Digest, size: number): Buffer {
  const v = store.blobValueSync(d);
  return checkBlobBytes(d, size, v.file ? fs.readFileSync(store.objectPath(d)) : v.data);
}

const MARKER_MAGIC = Buffer.from('strlayr\x01', 'latin1');
