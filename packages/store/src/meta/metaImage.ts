import * as fs from 'node:fs';
import * as path from 'node:path';
import {ErofsError, type ErofsMeta, type ErofsNode, ErofsTree, type FileContent, writeErofs} from '@strata/erofs';
import type {Digest} from '../objects/digest.js';
import {StoreError, rethrowNoSpace} from '../errors.js';
import type {Store} from '../objects/Store.js';
import {type PackIndex, type StagedFile, choosePacks, encodePackList, loadPackIndex, packPath, readPackList, stagePack, syncAll, touchPack} from './packs.js';
import {checkBlobBytes} from '../objects/verifiedRead.js';
import type {Meta, Tree, TreeEntry} from '../objects/tree.js';
import {nameToBytes} from '../objects/names.js';
import {INLINE_MAX} from '../objects/Store.js';

/**
 * Blobs up to this size go into the metadata image itself; larger inline (LevelDB) blobs
 * are kept once per store in small-blob packs (packs.ts) and redirected there. 2 KiB is
 * half an EROFS block, the most the writer packs beside a file's inode, so such a file
 * costs the image its bytes and no block of its own; a root filesystem's files of at most
 * 2 KiB are about half its files and 1% of its bytes (docs/design.md).
 */
export const META_INLINE_MAX = 2048;

/** A tree's metadata image: what overlayfs needs to serve it. */
export interface MetaImage {
  readonly tree: Digest;
  /** The EROFS image file, `<store>/meta/<hex of the tree digest>.erofs`. */
  readonly path: string;
  /** The data-only lower layer of object files (`/b3/<2>/<62>` redirects): `<store>/objects`. */
  readonly objects: string;
  /**
   * The small-blob packs the image's `/small/<2>/<62>` redirects need (EROFS image files,
   * `<store>/packs/<hex>.erofs`): each is mounted and given to overlayfs as a data-only
   * lower after `objects`, in this order. At most MAX_PACKS_PER_IMAGE.
   */
  readonly packs: readonly string[];
  /** False when the image existed already (memoised by the tree digest). */
  readonly built: boolean;
}

/** What one build did. */
export interface MetaImageBuild extends MetaImage {
  readonly bytes: number;
  /** Regular files in the image: bytes inside the image, redirected to an object file, redirected to a pack. */
  readonly inlined: number;
  readonly redirected: number;
  readonly packedRefs: number;
  /** Blobs this build wrote into a fresh pack (the others were in packs already); 0 when it wrote none. */
  readonly packedNew: number;
  readonly inodes: number;
}

export interface MetaImageOptions {
  /** Overrides META_INLINE_MAX (benchmarks compare thresholds). Images of one tree must not mix thresholds, so only a fresh store should use it. */
  readonly inlineMax?: number;
}

/** `<store>/meta/<64 hex>.erofs`: where the metadata image of `tree` lives (whether or not it exists). */
export function metaImagePath(store: Store, tree: Digest): string {
  return path.join(store.dir, 'meta', `${tree.slice(3)}.erofs`);
}

/**
 * The metadata image of a merged tree (a flattened image's tree, `@strata/union`
 * flattenLayers), built on first use and memoised by the tree digest: an EROFS image with
 * every name, mode, owner, mtime, xattr, symlink, hardlink and device node of the tree,
 * whose regular files are metacopy files redirecting into `objects/` or into small-blob
 * packs (files of at most META_INLINE_MAX bytes, and empty ones, are kept in the image).
 * To serve the tree, mount `path` and each of `packs` read-only (mount(2) on the file, or
 * `mount -t erofs -o ro,loop`), then overlayfs with `lowerdir=META::<objects>::PACK…`
 * (data-only lowers) and the container's upperdir and workdir.
 *
 * Durable before visible: a fresh pack (stagePack) and the image, whose first 1 KiB names
 * its packs, are written to tmp/, fsynced together, and renamed, the pack first; a file
 * under its name is complete, and an image is used only when the packs it names exist. An image
 * found in place is used when it has a pack list and its packs exist, and built again
 * otherwise. Everything here is derived data: `sweepDerived` (gc) removes what no live tree
 * needs, and this function writes it again. Whiteouts in `tree` are left out (a merged tree
 * has none).
 *
 * Throws OBJECT_MISSING / OBJECT_CORRUPT for a missing or damaged tree or blob, NO_SPACE,
 * and NOT_MOUNTABLE (an ErofsError as its cause: an xattr EROFS cannot name) for trees
 * EROFS cannot express.
 */
export async function ensureMetaImage(store: Store, tree: Digest, options: MetaImageOptions = {}): Promise<MetaImage | MetaImageBuild> {
  const image = metaImagePath(store, tree);
  const objects = path.join(store.dir, 'objects');
  const packs = existingPacks(store, image);
  if (packs) return {tree, path: image, objects, packs, built: false};
  return buildMetaImage(store, tree, options);
}

/** The pack files of the image at `image`; undefined when it is absent, has no pack list (built before packs) or a pack is gone. */
function existingPacks(store: Store, image: string): string[] | undefined {
  let list;
  try {
    list = readPackList(image);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const packs = list?.map(p => packPath(store, p));
  return packs?.every(p => fs.existsSync(p)) ? packs : undefined;
}

/** ensureMetaImage's build, done whether or not the image exists (benchmarks, repair). */
export async function buildMetaImage(store: Store, tree: Digest, options: MetaImageOptions = {}): Promise<MetaImageBuild> {
  const inlineMax = options.inlineMax ?? META_INLINE_MAX;
  const image = metaImagePath(store, tree);
  const index = loadPackIndex(store);
  let described;
  try {
    described = describeTree(store, tree, inlineMax, index);
  } catch (err) {
    throw notMountable(err, tree);
  }
  const {erofs, small, counts} = described;

  const staged: StagedFile[] = [];
  try {
    let packs: Digest[], packedNew: number;
    try {
      ({packs, packedNew} = packsFor(store, index, small, staged));
    } catch (err) {
      rethrowNoSpace(err, `the small-blob pack of tree ${tree}`);
    }
    let stats;
    try {
      const tmp = store.tmpPath('meta');
      staged.push({tmp, name: image});
      // The UUID is the tree's: the same tree gives the same bytes, two trees two volumes.
      stats = writeErofsTmp(erofs, tmp, {uuid: Buffer.from(tree.slice(3, 35), 'hex'), head: encodePackList(packs)});
      // All made durable at once, then named in order: a pack's list, the pack, the image.
      // A name present is a whole file; an image whose packs a crash left unnamed is built
      // again (ensureMetaImage checks that they exist).
      await syncAll(staged.map(f => f.tmp));
      fs.mkdirSync(path.dirname(image), {recursive: true});
      for (const f of staged) fs.renameSync(f.tmp, f.name);
    } catch (err) {
      rethrowNoSpace(notMountable(err, tree), `the metadata image of tree ${tree}`);
    }
    return {tree, path: image, objects: path.join(store.dir, 'objects'), packs: packs.map(p => packPath(store, p)), built: true,
      bytes: stats.bytes, inodes: stats.inodes, ...counts, packedNew};
  } finally {
    for (const f of staged) fs.rmSync(f.tmp, {force: true});
  }
}

/** Writes the image to a new file in tmp/, not yet synced (buildMetaImage syncs it with the pack). */
function writeErofsTmp(erofs: ErofsTree, file: string, options: Parameters<typeof writeErofs>[2]) {
  const fd = fs.openSync(file, 'wx', 0o444);
  try {
    return writeErofs(erofs, chunk => {
      for (let at = 0; at < chunk.length;) at += fs.writeSync(fd, chunk, at);
    }, options);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The packs that serve `small` (the blobs the tree needs from packs; bytes read for those no
 * pack held): existing packs chosen by choosePacks and touched (so that a gc running now
 * keeps them), and a fresh pack for the rest. A pack a gc removed meanwhile is left out and
 * its blobs go into the fresh pack.
 */
function packsFor(store: Store, index: PackIndex, small: Map<Digest, Buffer | undefined>, staged: StagedFile[]): {packs: Digest[]; packedNew: number} {
  const hexes = new Set<string>();
  for (const d of small.keys()) hexes.add(d.slice(3));
  const {use, fresh} = choosePacks(index, hexes);
  const packs = use.filter(p => touchPack(store, p));
  if (packs.length < use.length) {
    const kept = new Set(packs.map(p => index.packs.indexOf(p)));
    for (const hex of hexes) if (!index.byBlob.get(hex)?.some(p => kept.has(p))) fresh.add(hex);
  }
  if (fresh.size === 0) return {packs, packedNew: 0};
  const bytes = new Map<Digest, Buffer>();
  for (const hex of fresh) {
    const d = `b3:${hex}` as Digest;
    bytes.set(d, small.get(d) ?? inlineBytes(store, d));
  }
  const {pack, files} = stagePack(store, bytes);
  staged.push(...files);
  packs.push(pack);
  return {packs, packedNew: bytes.size};
}

/** An inline blob's bytes, checked like every read of a blob: damaged bytes are never served. */
function inlineBytes(store: Store, d: Digest): Buffer {
  const b = store.blobValueSync(d);
  if (b.file) throw new StoreError('OBJECT_CORRUPT', `blob ${d} is in a small-blob pack but is not an inline blob`);
  return checkBlobBytes(d, b.size, b.data);
}

/**
 * The tree as an ErofsTree, and the blobs it needs from packs (digest -> its checked bytes,
 * or undefined for a blob some pack holds already: such a blob needs no index lookup, which
 * was most of a build when its bytes exist for the kernel).
 */
function describeTree(store: Store, root: Digest, inlineMax: number, packs: PackIndex) {
  // Trees are read without a thread hop each (a hop costs ~0.5 ms on a busy machine, and
  // the walk visits every directory) and not cached: one build reads each once.
  const rootTree = store.getTreeSync(root, {cache: false});
  const erofs = new ErofsTree(metaOf(rootTree));
  const small = new Map<Digest, Buffer | undefined>();
  const counts = {inlined: 0, redirected: 0, packedRefs: 0};
  // The first path of each file, for hardlinks: a tree's hardlink names a path of its
  // layer, which a higher layer may have replaced since; as in checkout, it is the same
  // inode only if that path still holds the same blob, and a file of its own otherwise.
  const files = new Map<string, {node: ErofsNode; blob: Digest}>();
  const links: {parent: ErofsNode; path: string; entry: Extract<TreeEntry, {kind: 'hardlink'}>}[] = [];

  const content = (e: {size: number; blob: Digest}): FileContent => {
    if (e.size === 0) {
      counts.inlined++;
      return {data: EMPTY};
    }
    const hex = e.blob.slice(3);
    const packed = {size: e.size, redirect: `/small/${hex.slice(0, 2)}/${hex.slice(2)}`};
    if (e.size > inlineMax && e.size <= INLINE_MAX && packs.byBlob.has(hex)) {
      counts.packedRefs++;
      if (!small.has(e.blob)) small.set(e.blob, undefined);
      return packed;
    }
    const b = store.blobValueSync(e.blob);
    if (b.file) {
      counts.redirected++;
      return {size: e.size, redirect: `/b3/${hex.slice(0, 2)}/${hex.slice(2)}`};
    }
    // Checked like every read of a blob: damaged bytes are never served.
    const data = checkBlobBytes(e.blob, b.size, b.data);
    if (data.length <= inlineMax) {
      counts.inlined++;
      return {data};
    }
    counts.packedRefs++;
    small.set(e.blob, data);
    return packed;
  };

  const visit = (tree: Tree, node: ErofsNode, at: string): void => {
    for (const e of tree.entries) {
      const p = `${at}/${e.name}`;
      switch (e.kind) {
        case 'dir': {
          const child = store.getTreeSync(e.tree, {cache: false});
          visit(child, erofs.mkdir(node, nameToBytes(e.name), metaOf(child)), p);
          break;
        }
        case 'file':
          files.set(p, {node: erofs.addFile(node, nameToBytes(e.name), metaOf(e), content(e)), blob: e.blob});
          break;
        case 'hardlink':
          links.push({parent: node, path: p, entry: e});
          break;
        case 'symlink':
          erofs.addSymlink(node, nameToBytes(e.name), metaOf(e), nameToBytes(e.target));
          break;
        case 'char':
        case 'block':
          erofs.addDevice(node, nameToBytes(e.name), e.kind, metaOf(e), e.devmajor, e.devminor);
          break;
        case 'fifo':
          erofs.addFifo(node, nameToBytes(e.name), metaOf(e));
          break;
        case 'whiteout':
          break;
      }
    }
  };
  visit(rootTree, erofs.root, '');
  for (const {parent, path: p, entry} of links) {
    const target = files.get(entry.target);
    if (target && target.blob === entry.blob) erofs.link(parent, nameToBytes(entry.name), target.node);
    else files.set(p, {node: erofs.addFile(parent, nameToBytes(entry.name), metaOf(entry), content(entry)), blob: entry.blob});
  }
  return {erofs, small, counts};
}

/**
 * An ErofsError (the writer's rule for what EROFS can hold) as the store's NOT_MOUNTABLE:
 * the tree is fine as a layer, exports and checks out, but the kernel cannot be given it.
 * @strata/erofs stays free of the store; the erofs code stays in the message.
 */
function notMountable(err: unknown, tree: Digest): unknown {
  if (!(err instanceof ErofsError)) return err;
  return new StoreError('NOT_MOUNTABLE', `tree ${tree} cannot be mounted: ${err.message} (${err.code})`, {cause: err});
}

function metaOf(m: Meta): ErofsMeta {
  if (m.mode > 0o7777) throw new StoreError('OBJECT_CORRUPT', `an entry has mode ${m.mode.toString(8)}, more than permission bits`);
  return m.xattrs ? {mode: m.mode, uid: m.uid, gid: m.gid, mtime: m.mtime, xattrs: m.xattrs} : {mode: m.mode, uid: m.uid, gid: m.gid, mtime: m.mtime};
}

const EMPTY = Buffer.alloc(0);
