import * as fs from 'node:fs';
import * as path from 'node:path';
import {ErofsError, type ErofsMeta, type ErofsNode, ErofsTree, type FileContent, writeErofs} from '@strata/erofs';
import {type Digest, hashBytes, preferNativeHash} from '../objects/digest.js';
import {StoreError, rethrowNoSpace} from '../errors.js';
import type {Store} from '../objects/Store.js';
import {type Claim, type PackIndex, type StagedFile, choosePacks, claimPack, encodePackList, loadPackIndex, packDir, packFiles, packPath, placeClaimed, readPackList, syncAll} from './packs.js';
import {PackSink} from './packSink.js';
import {checkBlobBytes} from '../objects/verifiedRead.js';
import type {Xattrs} from '../objects/tree.js';
import {KIND_BLOCK, KIND_CHAR, KIND_DIR, KIND_FIFO, KIND_FILE, KIND_HARDLINK, KIND_SYMLINK, KIND_WHITEOUT, TreeCursor} from './treeCursor.js';
import {INLINE_MAX} from '../objects/Store.js';

/**
 * Blobs up to this size go into the metadata image itself; larger inline (LevelDB) blobs
 * are kept once per store in small-blob packs (packs.ts) and redirected there. 0: every
 * inline blob is served by a pack, since layers are packed when they are stored
 * (layerPacks.ts), so a first mount reads no small blob from the index and the image holds
 * only metadata (docs/design.md, "Layer packs"; 2 KiB before, when the mount packed them).
 */
export const META_INLINE_MAX = 0;

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
  /** Overrides PACK_THREAD_BYTES, from which size a fresh pack is written on a thread of its own (tests: both ways give the same bytes). */
  readonly packThreadBytes?: number;
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
  const sink = new PackSink(options.packThreadBytes);
  const staged: StagedFile[] = [];
  try {
    let described;
    try {
      described = describeTree(store, tree, inlineMax, index, sink);
    } catch (err) {
      throw notMountable(err, tree);
    }
    const {erofs, small, counts} = described;
    // The fresh pack is written (on a thread of its own when it is large: packSink.ts)
    // while the image is: the image's pack list, in its first 1 KiB, is written last.
    let chosen: {packs: Digest[]; claims: Claim[]; packedNew: number; fresh?: Promise<Digest>};
    try {
      chosen = packsFor(store, index, small, sink, staged);
    } catch (err) {
      rethrowNoSpace(err, `the small-blob pack of tree ${tree}`);
    }
    let stats, packs: Digest[];
    try {
      const tmp = store.tmpPath('meta');
      staged.push({tmp, name: image});
      // The UUID is the tree's: the same tree gives the same bytes, two trees two volumes.
      stats = writeErofsTmp(erofs, tmp, {uuid: Buffer.from(tree.slice(3, 35), 'hex')});
      try {
        packs = chosen.fresh ? [...chosen.packs, await chosen.fresh] : chosen.packs;
      } catch (err) {
        rethrowNoSpace(err, `the small-blob pack of tree ${tree}`);
      }
      writeHead(tmp, encodePackList(packs));
      // All made durable before any is named (the pack's files by the sink: packSink.ts; a
      // layer's unchecked packs with the image), then named in order: a pack's list, the
      // pack, the image. A name present is a whole file; an image whose packs a crash left
      // unnamed is built again (ensureMetaImage checks that they exist).
      await Promise.all([syncAll([tmp, ...chosen.claims.flatMap(c => c.sync)]), sink.durable()]);
      for (const c of chosen.claims) placeClaimed(c);
      fs.mkdirSync(path.dirname(image), {recursive: true});
      for (const f of staged) fs.renameSync(f.tmp, f.name);
    } catch (err) {
      rethrowNoSpace(notMountable(err, tree), `the metadata image of tree ${tree}`);
    }
    return {tree, path: image, objects: path.join(store.dir, 'objects'), packs: packs.map(p => packPath(store, p)), built: true,
      bytes: stats.bytes, inodes: stats.inodes, ...counts, packedNew: chosen.packedNew};
  } finally {
    await sink.stop();
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

/** Puts the pack list into the image's first 1 KiB (which writeErofs left zero), before the image is synced. */
function writeHead(file: string, head: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  try {
    for (let at = 0; at < head.length;) at += fs.writeSync(fd, head, at, head.length - at, at);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The packs that serve `small` (the blobs the tree needs from packs, with the packs that
 * hold each; none for those whose bytes went into `sink`, as no pack held them): existing
 * packs chosen by choosePacks and claimed (touched, so that a gc running now keeps them; a
 * layer's unchecked pack checked, and to be synced and placed: claimPack), and a fresh pack
 * for the rest, whose digest `fresh` gives once it is written (staged, in tmp/). A pack a gc
 * removed meanwhile, or an unchecked one that fails its check, is left out and its blobs go
 * into the fresh pack.
 */
function packsFor(store: Store, index: PackIndex, small: SmallBlobs, sink: PackSink, staged: StagedFile[]): {packs: Digest[]; claims: Claim[]; packedNew: number; fresh?: Promise<Digest>} {
  const {hexes, holders} = small;
  let {use, fresh} = choosePacks(index, holders);
  const claims: Claim[] = [];
  const packs = use.filter(p => {
    const claim = claimPack(store, index, p);
    if (claim) claims.push(claim);
    return claim !== undefined;
  });
  if (packs.length < use.length) {
    const kept = new Set(packs.map(p => index.packs.indexOf(p)));
    fresh = Array.from(holders.keys()).filter(i => !holders[i]?.some(p => kept.has(p)));
  }
  if (fresh.length === 0) return {packs, claims, packedNew: 0};
  // Blobs read in the walk are in the sink already (no pack holds them, so every one is
  // fresh); those of packs not chosen are read now.
  for (const i of fresh) if (holders[i] !== undefined) addInline(store, sink, `b3:${hexes[i]!}` as Digest);
  fs.mkdirSync(packDir(store), {recursive: true});
  const tmpPack = store.tmpPath('pack');
  const tmpList = store.tmpPath('blobs');
  staged.push({tmp: tmpList, name: ''}, {tmp: tmpPack, name: ''}); // removed on a failure; named below
  const packedNew = sink.size;
  const pending = sink.finish(tmpPack, tmpList).then(pack => {
    const names = packFiles(store, pack, tmpList, tmpPack);
    staged.splice(staged.findIndex(f => f.tmp === tmpList), 2, ...names);
    return pack;
  });
  pending.catch(() => {}); // awaited by the build; a failure before that must not go unhandled
  return {packs, claims, packedNew, fresh: pending};
}

/** The distinct blobs a tree needs from packs: hex digests, and the packs holding each (undefined: none, its bytes are in the sink). */
interface SmallBlobs {
  readonly hexes: string[];
  readonly holders: (readonly number[] | undefined)[];
  /** hex -> its index in the two lists. */
  readonly seen: Map<string, number>;
}

/** An inline blob's bytes into the sink (which checks them against the digest, as every read of a blob is). */
function addInline(store: Store, sink: PackSink, d: Digest): void {
  const b = store.blobValueSync(d);
  if (b.file) throw new StoreError('OBJECT_CORRUPT', `blob ${d} is in a small-blob pack but is not an inline blob`);
  sink.add(d, b.size, b.data);
}

/**
 * The tree as an ErofsTree, and the blobs it needs from packs (digest -> its checked bytes,
 * or undefined for a blob some pack holds already: such a blob needs no index lookup, which
 * was most of a build when its bytes exist for the kernel).
 *
 * Trees are read as bytes (TreeCursor: no object per entry, no second encoding), without a
 * thread hop each (a hop costs ~0.5 ms on a busy machine, and the walk visits every
 * directory) and not cached: one build reads each once. Names and link targets go to the
 * image as the bytes the trees hold.
 */
function describeTree(store: Store, root: Digest, inlineMax: number, packs: PackIndex, sink: PackSink) {
  preferNativeHash(); // every tree and inline blob is hashed
  const rootCursor = new TreeCursor(store.treeBytesSync(root), `tree ${root}`);
  const erofs = new ErofsTree(dirMeta(rootCursor));
  const small: SmallBlobs = {hexes: [], holders: [], seen: new Map()};
  const counts = {inlined: 0, redirected: 0, packedRefs: 0};
  const links: Link[] = [];

  const content = (size: number, hex: string): FileContent => {
    if (size === 0) {
      counts.inlined++;
      return {data: EMPTY};
    }
    // A blob some pack holds, or one the sink has already (a second file of the same bytes), needs no lookup.
    if (size > inlineMax && size <= INLINE_MAX) {
      if (small.seen.has(hex)) {
        counts.packedRefs++;
        return packedContent(size, hex);
      }
      const holders = packs.byBlob.get(hex);
      if (holders) {
        counts.packedRefs++;
        small.seen.set(hex, small.hexes.push(hex) - 1);
        small.holders.push(holders);
        return packedContent(size, hex);
      }
    }
    const blob = `b3:${hex}` as Digest;
    const b = store.blobValueSync(blob);
    if (b.file) {
      counts.redirected++;
      return {size, redirect: `/b3/${hex.slice(0, 2)}/${hex.slice(2)}`};
    }
    if (b.size <= inlineMax) {
      counts.inlined++;
      // Checked like every read of a blob: damaged bytes are never served.
      return {data: checkBlobBytes(blob, b.size, b.data)};
    }
    // Checked by the sink (on the pack's thread when it has one) before anything is named.
    counts.packedRefs++;
    sink.add(blob, b.size, b.data);
    small.seen.set(hex, small.hexes.push(hex) - 1);
    small.holders.push(undefined);
    return packedContent(size, hex);
  };

  // Directories in the order met; each tree's bytes are let go once its entries are added.
  const visit = (c: TreeCursor, node: ErofsNode): void => {
    while (c.next()) {
      switch (c.kind) {
        case KIND_DIR: {
          const d = `b3:${c.refHex()}` as Digest;
          const child = new TreeCursor(store.treeBytesSync(d), `tree ${d}`);
          visit(child, erofs.mkdir(node, c.name(), dirMeta(child)));
          break;
        }
        case KIND_FILE:
          erofs.addFile(node, c.name(), entryMeta(c), content(c.size, c.refHex()));
          break;
        case KIND_HARDLINK:
          links.push({parent: node, name: Buffer.from(c.name()), meta: entryMeta(c), size: c.size, hex: c.refHex(), target: Buffer.from(c.target())});
          break;
        case KIND_SYMLINK:
          erofs.addSymlink(node, c.name(), entryMeta(c), c.target());
          break;
        case KIND_CHAR:
        case KIND_BLOCK:
          erofs.addDevice(node, c.name(), c.kind === KIND_CHAR ? 'char' : 'block', entryMeta(c), c.devmajor, c.devminor);
          break;
        case KIND_FIFO:
          erofs.addFifo(node, c.name(), entryMeta(c));
          break;
        case KIND_WHITEOUT:
          break;
      }
    }
  };
  visit(rootCursor, erofs.root);
  // A tree's hardlink names a path of its layer, which a higher layer may have replaced
  // since; as in checkout, it is the same inode only if that path is a file (the first
  // name of one, or an earlier hardlink made a file of its own) holding the same blob,
  // and a file of its own otherwise.
  for (const l of links) {
    const target = fileAt(erofs, l.target);
    if (target !== undefined && blobHexOf(erofs, target) === l.hex) erofs.link(l.parent, l.name, target);
    else erofs.addFile(l.parent, l.name, l.meta, content(l.size, l.hex));
  }
  return {erofs, small, counts};
}

/** A file served by a small-blob pack. */
function packedContent(size: number, hex: string): FileContent {
  return {size, redirect: `/small/${hex.slice(0, 2)}/${hex.slice(2)}`};
}

/** A hardlink of the tree, resolved once the walk has added every file. */
interface Link {
  readonly parent: ErofsNode;
  readonly name: Buffer;
  readonly meta: ErofsMeta;
  readonly size: number;
  readonly hex: string;
  /** An absolute path (`/a/b`), as bytes. */
  readonly target: Buffer;
}

/** The file inode first added at `path` (absolute, bytes); undefined when there is none, or it is no regular file. */
function fileAt(erofs: ErofsTree, path: Buffer): ErofsNode | undefined {
  if (path[0] !== 0x2f) return undefined;
  let node: ErofsNode | undefined = erofs.root;
  for (let at = 1; node !== undefined;) {
    let end = path.indexOf(0x2f, at);
    if (end < 0) end = path.length;
    if (end === at) return undefined; // an empty component: a path no entry has
    node = erofs.lookup(node, path.subarray(at, end));
    if (end === path.length) return node !== undefined && erofs.kindOf(node) === 'file' ? node : undefined;
    at = end + 1;
  }
  return undefined;
}

/** The blob (hex) a file inode of the image shows: its redirect names it, or its bytes (checked against the blob when read) hash to it. */
function blobHexOf(erofs: ErofsTree, node: ErofsNode): string {
  const c = erofs.contentOf(node);
  if ('data' in c) return hashBytes(c.data).slice(3);
  const r = ('redirect' in c ? c.redirect : undefined) ?? '';
  return r.slice(r.length - 65, r.length - 63) + r.slice(r.length - 62);
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

function dirMeta(c: TreeCursor): ErofsMeta {
  return checkedMeta(c.mode, c.uid, c.gid, c.mtime, c.xattrs);
}

function entryMeta(c: TreeCursor): ErofsMeta {
  return checkedMeta(c.eMode, c.eUid, c.eGid, c.eMtime, c.eXattrs);
}

function checkedMeta(mode: number, uid: number, gid: number, mtime: number, xattrs: Xattrs | undefined): ErofsMeta {
  if (mode > 0o7777) throw new StoreError('OBJECT_CORRUPT', `an entry has mode ${mode.toString(8)}, more than permission bits`);
  return xattrs ? {mode, uid, gid, mtime, xattrs} : {mode, uid, gid, mtime};
}

const EMPTY = Buffer.alloc(0);
