import * as fs from 'node:fs';
import * as path from 'node:path';
import {ErofsTree, type FileContent, writeErofs} from '@strata/erofs';
import {type Digest, createHasher, digestBytes, digestFromBytes} from '../objects/digest.js';
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

function blobListPath(store: Store, pack: Digest): string {
  return path.join(packDir(store), `${pack.slice(3)}.blobs`);
}

/** The packs of a store by blob: which packs hold each packed blob (hex of its digest). */
export interface PackIndex {
  readonly packs: readonly Digest[];
  /** Blob hex -> indexes into `packs`. */
  readonly byBlob: ReadonlyMap<string, readonly number[]>;
}

/** The packs on disk (those whose `.erofs` exists) and their blobs, from their `.blobs` lists. */
export function loadPackIndex(store: Store): PackIndex {
  const packs: Digest[] = [];
  const byBlob = new Map<string, number[]>();
  // In name order, so that choosePacks's ties (and so the image's pack list) do not depend on the directory's order.
  for (const name of readdirOrEmpty(packDir(store)).sort()) {
    const m = /^([0-9a-f]{64})\.erofs$/.exec(name);
    if (!m) continue;
    const pack = `b3:${m[1]}` as Digest;
    let list: Buffer;
    try {
      list = fs.readFileSync(blobListPath(store, pack));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // gc removed it meanwhile (the list goes after the pack)
      throw err;
    }
    const at = packs.push(pack) - 1;
    // The whole list in hex once, and a slice per blob: a fraction of a toString each.
    const hexes = list.toString('hex', 0, list.length - (list.length % 32));
    for (let o = 0; o < hexes.length; o += 64) {
      const hex = hexes.slice(o, o + 64);
      const holders = byBlob.get(hex);
      if (holders) holders.push(at);
      else byBlob.set(hex, [at]);
    }
  }
  return {packs, byBlob};
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
  let fan = '', dir = small;
  for (let i = 0; i < sorted.length; i++) {
    const d = sorted[i]!;
    if (d.slice(3, 5) !== fan) dir = tree.mkdir(small, fan = d.slice(3, 5), DIR_META);
    tree.addFile(dir, d.slice(5), FILE_META, content(i));
  }
  try {
    const hasher = createHasher();
    const fd = fs.openSync(tmpPack, 'wx', 0o444);
    try {
      writeErofs(tree, chunk => {
        hasher.update(chunk);
        for (let at = 0; at < chunk.length;) at += fs.writeSync(fd, chunk, at);
      }, readData ? {readData} : {});
    } finally {
      fs.closeSync(fd);
    }
    fs.writeFileSync(tmpList, Buffer.concat(sorted.map(digestBytes)), {mode: 0o444, flag: 'wx'});
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

/** 8 bytes: "strpack" and the record's version, 1. */
const PACK_LIST_MAGIC = Buffer.from('strpack\x01', 'latin1');
const DIR_META = {mode: 0o755, uid: 0, gid: 0, mtime: 0};
/** A pack's files are only ever read through a redirect: the metadata image gives the file's mode, owner and times. */
const FILE_META = {mode: 0o444, uid: 0, gid: 0, mtime: 0};
