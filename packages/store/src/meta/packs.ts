import * as fs from 'node:fs';
import * as path from 'node:path';
import {ErofsTree, type FileContent, writeErofs} from '@strata/erofs';
import {type Digest, createHasher, digestBytes, digestFromBytes, hashBytes} from '../objects/digest.js';
import type {Store} from '../objects/Store.js';
import {readdirOrEmpty} from '../makeDirs.js';

/**
 * Small-blob packs: inline (LevelDB) blobs too large for a metadata image, kept once per
 * store for the kernel in EROFS images of their own, `packs/<64 hex>.erofs`, named by the
 * BLAKE3 of their bytes. A pack holds each blob as the file `/small/<2 hex>/<62 hex>` (the
 * blob's digest), so a metadata image's redirect names the blob, whichever pack serves it:
 * a container's overlay mount lists the packs its image needs as data-only lowers after
 * `objects/`, and overlayfs looks a redirect up in each data-only lower in turn.
 * Beside each pack, `packs/<64 hex>.blobs` lists the blobs it holds (32-byte digests, in
 * order), so that a build finds which blobs are packed already without reading the packs.
 * All of it is derived data: gc removes a pack no metadata image names, and builds write
 * what is missing again.
 *
 * A layer's pack is written when the layer is stored without an fsync, as
 * `packs/<64 hex>.unchecked` (layerPacks.ts): such a pack is never served as it is. The
 * first build that chooses it checks it (its bytes hash to its name, its list to the
 * digest in its head) and fsyncs it and its list before it becomes `<hex>.erofs` and an
 * image names it (claimPack); one that fails the check is removed and its blobs packed
 * afresh from the index.
 */

/**
 * At most this many packs in one mount. A tree whose small blobs are spread over more
 * packs gets a fresh pack with every blob its chosen packs lack: a copy of some blobs
 * (derived data, collectable), for a mount of at most 2 + MAX_PACKS lowers.
 */
export const MAX_PACKS_PER_IMAGE = 4;

/** `<store>/packs`. */
export function packDir(store: Store): string {
  return path.join(store.dir, 'packs');
}

/** `<store>/packs/<64 hex>.erofs`. */
export function packPath(store: Store, pack: Digest): string {
  return path.join(packDir(store), `${pack.slice(3)}.erofs`);
}

/** `<store>/packs/<64 hex>.unchecked`: a layer's pack as its import wrote it, not yet synced nor checked (claimPack). */
export function uncheckedPackPath(store: Store, pack: Digest): string {
  return path.join(packDir(store), `${pack.slice(3)}.unchecked`);
}

/** `<store>/packs/<64 hex>.blobs`: the blobs a pack holds. */
export function blobListPath(store: Store, pack: Digest): string {
  return path.join(packDir(store), `${pack.slice(3)}.blobs`);
}

/** The packs of a store by blob: which packs hold each packed blob (hex of its digest). */
export interface PackIndex {
  readonly packs: readonly Digest[];
  /** Blob hex -> indexes into `packs`. */
  readonly byBlob: ReadonlyMap<string, readonly number[]>;
  /** The packs of `packs` that are `.unchecked` (a build claims them before it names one). */
  readonly unchecked: ReadonlySet<Digest>;
}

/** The packs on disk (those whose `.erofs` or `.unchecked` exists) and their blobs, from their `.blobs` lists. */
export function loadPackIndex(store: Store): PackIndex {
  const packs: Digest[] = [];
  const byBlob = new Map<string, number[]>();
  const unchecked = new Set<Digest>();
  // In name order, so that choosePacks's ties (and so the image's pack list) do not depend
  // on the directory's order; `<hex>.erofs` comes before `<hex>.unchecked`, which it makes redundant.
  for (const name of readdirOrEmpty(packDir(store)).sort()) {
    const m = /^([0-9a-f]{64})\.(erofs|unchecked)$/.exec(name);
    if (!m) continue;
    const pack = `b3:${m[1]}` as Digest;
    if (packs.at(-1) === pack) continue;
    let list: Buffer;
    try {
      list = fs.readFileSync(blobListPath(store, pack));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // gc removed it meanwhile (the list goes after the pack)
      throw err;
    }
    const at = packs.push(pack) - 1;
    if (m[2] === 'unchecked') unchecked.add(pack);
    // The whole list in hex once, and a slice per blob: a fraction of a toString each.
    const hexes = list.toString('hex', 0, list.length - (list.length % 32));
    for (let o = 0; o < hexes.length; o += 64) {
      const hex = hexes.slice(o, o + 64);
      const holders = byBlob.get(hex);
      if (holders) holders.push(at);
      else byBlob.set(hex, [at]);
    }
  }
  return {packs, byBlob, unchecked};
}

/**
 * Which existing packs serve a tree's blobs (`holders[i]`: the packs holding blob i, as
 * indexes into `index.packs`; undefined or empty when none does), and which blobs need a
 * fresh pack (indexes into `holders`): greedily the pack that holds most of the blobs still
 * uncovered (the lowest index of a tie), then the next, up to MAX_PACKS_PER_IMAGE; when that
 * leaves blobs uncovered, the last choice is dropped and a fresh pack takes every blob the
 * others lack. Blobs are numbers here, not digests: no string is hashed per blob and round.
 */
export function choosePacks(index: PackIndex, holders: readonly (readonly number[] | undefined)[]): {use: Digest[]; fresh: number[]} {
  const chosen: number[] = [];
  let uncovered = Array.from(holders.keys());
  const counts = new Uint32Array(index.packs.length);
  while (uncovered.length > 0 && chosen.length < MAX_PACKS_PER_IMAGE) {
    counts.fill(0);
    for (const i of uncovered) for (const p of holders[i] ?? NONE) counts[p]!++;
    let best = -1, most = 0;
    for (let p = 0; p < counts.length; p++) if (counts[p]! > most) [best, most] = [p, counts[p]!];
    if (best < 0) break;
    chosen.push(best);
    uncovered = uncovered.filter(i => !holders[i]?.includes(best));
  }
  if (uncovered.length > 0 && chosen.length === MAX_PACKS_PER_IMAGE) {
    chosen.pop();
    uncovered = Array.from(holders.keys()).filter(i => !holders[i]?.some(p => chosen.includes(p)));
  }
  return {use: chosen.map(p => index.packs[p]!), fresh: uncovered};
}

const NONE: readonly number[] = [];

/**
 * Marks a pack as in use by a build about to name it (its mtime is now): gc removes an
 * unnamed pack only when it is older than every process that could be building an image
 * (sweepDerived). False when the pack is gone (a gc removed it first).
 */
export function touchPack(store: Store, pack: Digest): boolean {
  const now = new Date();
  try {
    fs.utimesSync(packPath(store, pack), now, now);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** What a build must do before it names a pack it claimed: fsync `sync`, then rename `place` (an unchecked pack that passed its check). */
export interface Claim {
  readonly sync: readonly string[];
  readonly place?: StagedFile;
}

/**
 * Readies a pack a build is about to name: touched (so that a gc running now keeps it), and
 * when it is unchecked (a layer's pack, written without an fsync), checked: its bytes hash
 * to its name and its blob list to the digest in its head (so a list a crash left short or
 * stale is caught too). Undefined when the pack is gone, or unchecked and fails the check:
 * then its files are removed, and the build packs its blobs afresh. A passed unchecked pack
 * and its list are to be fsynced, and the pack renamed to `<hex>.erofs`, before the image
 * that names it is renamed (the Claim): so no image names a pack whose bytes are not
 * durable and checked.
 */
export function claimPack(store: Store, index: PackIndex, pack: Digest): Claim | undefined {
  if (touchPack(store, pack)) return {sync: []};
  if (!index.unchecked.has(pack)) return undefined;
  const file = uncheckedPackPath(store, pack), list = blobListPath(store, pack);
  const now = new Date();
  try {
    fs.utimesSync(file, now, now);
    if (packProblem(pack, file, list, true) === undefined) return {sync: [file, list], place: {tmp: file, name: packPath(store, pack)}};
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.rmSync(file, {force: true});
  if (!fs.existsSync(packPath(store, pack))) fs.rmSync(list, {force: true});
  return undefined;
}

/** Renames a claimed pack into place; another build that placed it first is as good. */
export function placeClaimed(claim: Claim): void {
  if (!claim.place) return;
  try {
    fs.renameSync(claim.place.tmp, claim.place.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !fs.existsSync(claim.place.name)) throw err;
  }
}

/** The BLAKE3 of a file's bytes, read 1 MiB at a time. Throws what reading throws (ENOENT included). */
function hashFile(file: string): Digest {
  const hasher = createHasher();
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = fs.openSync(file, 'r');
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) hasher.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hasher.digest();
}

/**
 * Why the pack file `file` is not the pack named `pack` with the blob list `list`, or
 * undefined when it is: its bytes hash to its name, and its head names its list's digest
 * (a pack written before heads has none: accepted unless `needHead`). Throws what reading
 * throws (ENOENT included).
 */
export function packProblem(pack: Digest, file: string, list: string, needHead: boolean): string | undefined {
  if (hashFile(file) !== pack) return 'its bytes do not hash to its name';
  const head = packHeadOf(file);
  if (head === undefined) return needHead ? 'it has no head naming its blob list' : undefined;
  return head.equals(listDigest(fs.readFileSync(list))) ? undefined : `its blob list (${path.basename(list)}) does not hash to the digest its head names`;
}

/** The list digest a pack's head names (undefined: no head, or not one of ours). */
function packHeadOf(file: string): Buffer | undefined {
  const head = Buffer.alloc(PACK_HEAD_MAGIC.length + 32);
  const fd = fs.openSync(file, 'r');
  try {
    if (fs.readSync(fd, head, 0, head.length, 0) !== head.length) return undefined;
  } finally {
    fs.closeSync(fd);
  }
  return head.subarray(0, PACK_HEAD_MAGIC.length).equals(PACK_HEAD_MAGIC) ? head.subarray(PACK_HEAD_MAGIC.length) : undefined;
}

/** A blob list's digest, as the pack's head holds it. */
function listDigest(list: Buffer): Buffer {
  return digestBytes(hashBytes(list));
}

/** A file written under tmp/ and not yet synced: `sync` makes it durable, then `place` gives it its name. */
export interface StagedFile {
  readonly tmp: string;
  readonly name: string;
}

/**
 * Writes a pack of `blobs` (digest -> its checked bytes) and its blob list to tmp/, not yet
 * synced, and returns its name and the two files, in the order they are to be renamed (the
 * list first: a pack under its name has its list). The caller syncs them (syncAll) and
 * renames them (placeAll) before it renames the metadata image that names the pack, so a
 * pack under its name is whole. The same blobs give the same bytes, so two processes
 * writing one pack rename the same file.
 */
export function stagePack(store: Store, blobs: ReadonlyMap<Digest, Buffer>): {pack: Digest; files: StagedFile[]} {
  fs.mkdirSync(packDir(store), {recursive: true});
  const tmpPack = store.tmpPath('pack');
  const tmpList = store.tmpPath('blobs');
  const pack = writePack(blobs, tmpPack, tmpList);
  return {pack, files: packFiles(store, pack, tmpList, tmpPack)};
}

/** A pack's two staged files, in the order they are renamed: its list, then the pack. */
export function packFiles(store: Store, pack: Digest, tmpList: string, tmpPack: string): StagedFile[] {
  return [{tmp: tmpList, name: blobListPath(store, pack)}, {tmp: tmpPack, name: packPath(store, pack)}];
}

/**
 * Writes the pack of `blobs` (digest -> its checked bytes) to `tmpPack` and its blob list to
 * `tmpList` (new files, not synced) and returns the pack's digest, the BLAKE3 of its bytes.
 * Needs no store, so a pack thread (packThread.ts) runs it too. On a failure neither file is left.
 */
export function writePack(blobs: ReadonlyMap<Digest, Uint8Array>, tmpPack: string, tmpList: string): Digest {
  const sorted = [...blobs.keys()].sort();
  return writePackOf(sorted, i => {
    const data = blobs.get(sorted[i]!)!;
    return {data: Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)};
  }, tmpPack, tmpList);
}

/**
 * writePack of blobs whose bytes are read as the pack is written, not held: `sorted`
 * (digests in order) and their sizes, and `read(i)` for the bytes of `sorted[i]` (checked
 * by the caller; called once or twice per blob, in order). The same blobs give the same
 * bytes as writePack, with at most one blob's bytes in hand.
 */
export function writeStreamedPack(sorted: readonly Digest[], sizes: readonly number[], read: (i: number) => Buffer, tmpPack: string, tmpList: string): Digest {
  return writePackOf(sorted, i => ({size: sizes[i]!, dataRef: i}), tmpPack, tmpList, read);
}

function writePackOf(sorted: readonly Digest[], content: (i: number) => FileContent, tmpPack: string, tmpList: string, readData?: (ref: number) => Buffer): Digest {
  const tree = new ErofsTree(DIR_META);
  const small = tree.mkdir(tree.root, 'small', DIR_META);
  // Every name is a view of one buffer of the digests' hex (`b3:` and 64 digits each): one
  // conversion, not a string and its UTF-8 bytes per blob.
  const hex = Buffer.from(sorted.join(''), 'latin1');
  const at = (i: number) => DIGEST_CHARS * i + 3;
  let dir = small;
  for (let i = 0; i < sorted.length; i++) {
    const o = at(i);
    if (i === 0 || hex[o] !== hex[o - DIGEST_CHARS] || hex[o + 1] !== hex[o + 1 - DIGEST_CHARS]) dir = tree.mkdir(small, hex.subarray(o, o + 2), DIR_META);
    tree.addFile(dir, hex.subarray(o + 2, o + 64), FILE_META, content(i));
  }
  try {
    const list = packList(sorted);
    // The head (the first 1 KiB, which EROFS leaves unused) names the list: a pack that
    // hashes to its name vouches for its list too (claimPack).
    const head = Buffer.concat([PACK_HEAD_MAGIC, listDigest(list)]);
    const hasher = createHasher();
    const fd = fs.openSync(tmpPack, 'wx', 0o444);
    try {
      writeErofs(tree, chunk => {
        hasher.update(chunk);
        for (let at = 0; at < chunk.length;) at += fs.writeSync(fd, chunk, at);
      }, readData ? {head, readData} : {head});
    } finally {
      fs.closeSync(fd);
    }
    fs.writeFileSync(tmpList, list, {mode: 0o444, flag: 'wx'});
    return hasher.digest();
  } catch (err) {
    fs.rmSync(tmpPack, {force: true});
    fs.rmSync(tmpList, {force: true});
    throw err;
  }
}

/**
 * fsyncs the files all at once (on libuv's threads): the kernel commits them in one journal
 * transaction where it can, rather than one per file.
 */
export async function syncAll(files: readonly string[]): Promise<void> {
  await Promise.all(files.map(async file => {
    const fh = await fs.promises.open(file, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }));
}

/**
 * The record a metadata image keeps of the packs it needs, in its first 1 KiB (which EROFS
 * leaves unused): `strata-packs` magic (8 bytes), a u32 count, then each pack's 32-byte
 * digest. An image without it was built before packs (its redirects name spilled files in
 * objects/small/): it counts as absent, and is built again.
 */
export function encodePackList(packs: readonly Digest[]): Buffer {
  const head = Buffer.alloc(PACK_LIST_MAGIC.length + 4 + 32 * packs.length);
  PACK_LIST_MAGIC.copy(head, 0);
  head.writeUInt32LE(packs.length, PACK_LIST_MAGIC.length);
  packs.forEach((p, i) => digestBytes(p).copy(head, PACK_LIST_MAGIC.length + 4 + 32 * i));
  return head;
}

/** The packs a metadata image names, or undefined when it has no pack list (built before packs, or not an image of ours). */
export function readPackList(image: string): Digest[] | undefined {
  const head = Buffer.alloc(1024);
  let n: number;
  const fd = fs.openSync(image, 'r');
  try {
    n = fs.readSync(fd, head, 0, head.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  const base = PACK_LIST_MAGIC.length + 4;
  if (n < base || !head.subarray(0, PACK_LIST_MAGIC.length).equals(PACK_LIST_MAGIC)) return undefined;
  const count = head.readUInt32LE(PACK_LIST_MAGIC.length);
  if (count > MAX_PACKS_PER_IMAGE || base + 32 * count > n) return undefined;
  return Array.from({length: count}, (_, i) => digestFromBytes(head.subarray(base + 32 * i, base + 32 * (i + 1))));
}

/** A pack's blob list: the sorted digests' 32 bytes each, in order (one hex conversion for all). */
export function packList(sorted: readonly Digest[]): Buffer {
  return Buffer.from(sorted.map(d => d.slice(3)).join(''), 'hex');
}

/** `b3:` and 64 hex digits. */
const DIGEST_CHARS = 67;
/** A pack's head: "strlist" and its version, 1, then the BLAKE3 of the pack's blob list (32 bytes). */
const PACK_HEAD_MAGIC = Buffer.from('strlist\x01', 'latin1');
/** 8 bytes: "strpack" and the record's version, 1. */
const PACK_LIST_MAGIC = Buffer.from('strpack\x01', 'latin1');
const DIR_META = {mode: 0o755, uid: 0, gid: 0, mtime: 0};
/** A pack's files are only ever read through a redirect: the metadata image gives the file's mode, owner and times. */
const FILE_META = {mode: 0o444, uid: 0, gid: 0, mtime: 0};
