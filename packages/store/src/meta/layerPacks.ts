import * as fs from 'node:fs';
import * as path from 'node:path';
import {type Digest, digestBytes, digestFromBytes, preferNativeHash} from '../objects/digest.js';
import {rethrowNoSpace} from '../errors.js';
import {INLINE_MAX, type Store} from '../objects/Store.js';
import {checkBlobBytes} from '../objects/verifiedRead.js';
import {blobListPath, packDir, packPath, packList, touchPack, uncheckedPackPath, writeStreamedPack} from './packs.js';
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
 * it chooses, so that a gc running now keeps it). `inlineBlobs` (digest -> size), when the
 * caller has them, must be exactly the inline blobs the layer's tree names (a directory
 * import collects them as it goes: reading every tree again was ~0.1 s of cold code per
 * 10,000 files). Returns the pack, or undefined when the layer has fewer than
 * LAYER_PACK_MIN_BLOBS inline blobs.
 *
 * Nothing is synced: the pack becomes `packs/<hex>.unchecked` (and its list `<hex>.blobs`),
 * which no mount serves until a build has checked it against its name and made it durable
 * (packs.ts claimPack); a pack a crash left short or wrong fails that check and its blobs are
 * packed afresh from the index. A pack already in place (`<hex>.erofs`: durable) is not
 * written over, nor is a list (link, not rename: an unsynced list never replaces a durable
 * one). Throws NO_SPACE, OBJECT_MISSING, OBJECT_CORRUPT, before anything is named.
 */
export function writeLayerPack(store: Store, layer: Digest, inlineBlobs?: ReadonlyMap<Digest, number>): Digest | undefined {
  // The bytes of the blobs this handle stored since the last layer: those of this layer, mostly.
  const spool = store.takeInlineSpool();
  const tmp: string[] = [];
  try {
    const marker = layerPackMarker(store, layer);
    const existing = readLayerPack(marker);
    if (existing && (touchPack(store, existing) || touch(uncheckedPackPath(store, existing)))) return existing;
    const blobs = inlineBlobs ?? inlineBlobsOf(store, layer);
    if (blobs.size < LAYER_PACK_MIN_BLOBS) return undefined;
    preferNativeHash();
    const sorted = [...blobs.keys()].sort() as Digest[];
    const sizes = sorted.map(d => blobs.get(d)!);
    fs.mkdirSync(packDir(store), {recursive: true});
    const tmpPack = store.tmpPath('pack'), tmpList = store.tmpPath('blobs'), tmpMarker = store.tmpPath('layer');
    tmp.push(tmpPack, tmpList, tmpMarker);
    const digests = spool && packList(sorted); // the digests' bytes in order (InlineSpool.readAt)
    const read = (i: number) => (digests && spool!.readAt(digests, 32 * i)) ?? blobBytes(store, sorted[i]!, sizes[i]!);
    const pack = writeStreamedPack(sorted, sizes, read, tmpPack, tmpList);
    fs.writeFileSync(tmpMarker, Buffer.concat([MARKER_MAGIC, digestBytes(pack)]), {mode: 0o444, flag: 'wx'});
    if (!fs.existsSync(packPath(store, pack))) {
      linkIfAbsent(tmpList, blobListPath(store, pack));
      linkIfAbsent(tmpPack, uncheckedPackPath(store, pack));
    }
    fs.renameSync(tmpMarker, marker);
    return pack;
  } catch (err) {
    rethrowNoSpace(err, `the small-blob pack of layer ${layer}`);
  } finally {
    spool?.discard();
    for (const f of tmp) fs.rmSync(f, {force: true});
  }
}

/** A second name for a file, unless the name exists (then left as it is). */
function linkIfAbsent(file: string, name: string): void {
  try {
    fs.linkSync(file, name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** Sets a file's times to now; false when it is gone. */
function touch(file: string): boolean {
  const now = new Date();
  try {
    fs.utimesSync(file, now, now);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** The pack file of a layer's pack, when the layer has one: `<hex>.erofs` once a build has checked it, else `<hex>.unchecked`. */
export function layerPackOf(store: Store, layer: Digest): string | undefined {
  const p = readLayerPack(layerPackMarker(store, layer));
  if (!p) return undefined;
  return fs.existsSync(packPath(store, p)) ? packPath(store, p) : uncheckedPackPath(store, p);
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
