import * as fs from 'node:fs';
import * as path from 'node:path';
import {ErofsError, type ErofsMeta, type ErofsNode, ErofsTree, type FileContent, writeErofsFile} from '@strata/erofs';
import type {Digest} from '../objects/digest.js';
import {StoreError, rethrowNoSpace} from '../errors.js';
import type {Store} from '../objects/Store.js';
import {smallObjectPath, spillSmallBlobs} from './spillSmall.js';
import {checkBlobBytes} from '../objects/verifiedRead.js';
import type {Meta, Tree, TreeEntry} from '../objects/tree.js';
import {nameToBytes} from '../objects/names.js';
import {readdirOrEmpty} from '../makeDirs.js';
import {INLINE_MAX} from '../objects/Store.js';

/**
 * Blobs up to this size go into the metadata image itself; larger inline (LevelDB) blobs
 * are spilled once per store to `objects/small/` and redirected there (research/mounts.md
 * option C with a larger cut). 2 KiB is half an EROFS block, the most the writer packs
 * beside a file's inode, so such a file costs the image its bytes and no block of its
 * own. Chosen by `npm run bench -- mount` (docs/benchmarks.md): creating a file is what a
 * first mount pays for each spilled blob, and at 2 KiB half as many are spilled as at
 * composefs's 64 B, for about 1% of a root filesystem's bytes in each image.
 */
export const META_INLINE_MAX = 2048;

/** A tree's metadata image: what overlayfs needs to serve it. */
export interface MetaImage {
  readonly tree: Digest;
  /** The EROFS image file, `<store>/meta/<hex of the tree digest>.erofs`. */
  readonly path: string;
  /**
   * The data-only lower layer the image's redirects point into: `<store>/objects`
   * (`/b3/<2>/<62>` object files, `/small/<2>/<62>` spilled inline blobs).
   */
  readonly objects: string;
  /** False when the image existed already (memoised by the tree digest). */
  readonly built: boolean;
}

/** What one build did. */
export interface MetaImageBuild extends MetaImage {
  readonly bytes: number;
  /** Regular files in the image: bytes inside the image, redirected to an object file, redirected to a spilled file. */
  readonly inlined: number;
  readonly redirected: number;
  readonly spilledRefs: number;
  /** Spilled files this build wrote (the others existed). */
  readonly spilledNew: number;
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

export {smallObjectPath};

/**
 * The metadata image of a merged tree (a flattened image's tree, `@strata/union`
 * flattenLayers), built on first use and memoised by the tree digest: an EROFS image with
 * every name, mode, owner, mtime, xattr, symlink, hardlink and device node of the tree,
 * whose regular files are metacopy files redirecting into `objects/` (files of at most
 * META_INLINE_MAX bytes, and empty ones, are kept in the image). To serve the tree, mount
 * `path` read-only (`mount -t erofs -o ro,loop PATH META`, or mount(2) on the file), then
 * overlayfs with `lowerdir=META::<objects>` (objects as a data-only lower) and the
 * container's upperdir and workdir (research/mounts.md, "Each start").
 *
 * Durable before visible: spilled small files are written in a build directory in tmp/,
 * made durable with one syncfs and renamed into place (spillSmallBlobs), then the image is
 * written to tmp/, fsynced and renamed;
 * an image under its name is complete and all its redirects resolve. Everything here is
 * derived data: `sweepDerived` (gc) removes what no live tree or blob needs, and this
 * function writes it again. Whiteouts in `tree` are left out (a merged tree has none).
 *
 * Throws OBJECT_MISSING / OBJECT_CORRUPT for a missing or damaged tree or blob, NO_SPACE,
 * and NOT_MOUNTABLE (an ErofsError as its cause: an xattr EROFS cannot name) for trees
 * EROFS cannot express.
 */
export async function ensureMetaImage(store: Store, tree: Digest, options: MetaImageOptions = {}): Promise<MetaImage | MetaImageBuild> {
  const image = metaImagePath(store, tree);
  const objects = path.join(store.dir, 'objects');
  if (fs.existsSync(image)) return {tree, path: image, objects, built: false};
  return buildMetaImage(store, tree, options);
}

/** ensureMetaImage's build, done whether or not the image exists (benchmarks, repair). */
export async function buildMetaImage(store: Store, tree: Digest, options: MetaImageOptions = {}): Promise<MetaImageBuild> {
  const inlineMax = options.inlineMax ?? META_INLINE_MAX;
  const image = metaImagePath(store, tree);
  const {erofs, spills, counts} = await describeTree(store, tree, inlineMax).catch(err => { throw notMountable(err, tree); });

  let spilledNew;
  try {
    spilledNew = spillSmallBlobs(store, spills);
  } catch (err) {
    rethrowNoSpace(err, `the spilled files of tree ${tree}`);
  }

  const tmp = store.tmpPath('meta');
  let stats;
  try {
    // The UUID is the tree's: the same tree gives the same bytes, two trees two volumes.
    stats = writeErofsFile(erofs, tmp, {uuid: Buffer.from(tree.slice(3, 35), 'hex')});
    fs.mkdirSync(path.dirname(image), {recursive: true});
    fs.renameSync(tmp, image);
  } catch (err) {
    fs.rmSync(tmp, {force: true});
    rethrowNoSpace(notMountable(err, tree), `the metadata image of tree ${tree}`);
  }
  return {tree, path: image, objects: path.join(store.dir, 'objects'), built: true, bytes: stats.bytes, inodes: stats.inodes, ...counts, spilledNew};
}

/** The tree as an ErofsTree, and the inline blobs it needs spilled (digest -> bytes). */
async function describeTree(store: Store, root: Digest, inlineMax: number) {
  const rootTree = await store.getTree(root);
  const erofs = new ErofsTree(metaOf(rootTree));
  const spills = new Map<Digest, Buffer>();
  const counts = {inlined: 0, redirected: 0, spilledRefs: 0};
  // The first path of each file, for hardlinks: a tree's hardlink names a path of its
  // layer, which a higher layer may have replaced since; as in checkout, it is the same
  // inode only if that path still holds the same blob, and a file of its own otherwise.
  const files = new Map<string, {node: ErofsNode; blob: Digest}>();
  const links: {parent: ErofsNode; path: string; entry: Extract<TreeEntry, {kind: 'hardlink'}>}[] = [];

  // The names in objects/small/<fan>, read once per fan-out directory.
  const fans = new Map<string, ReadonlySet<string>>();
  const spilledExists = (hex: string): boolean => {
    const fan = hex.slice(0, 2);
    let names = fans.get(fan);
    if (!names) fans.set(fan, names = new Set(readdirOrEmpty(path.join(store.dir, 'objects', 'small', fan))));
    return names.has(hex.slice(2));
  };
  const content = (e: {size: number; blob: Digest}): FileContent => {
    if (e.size === 0) {
      counts.inlined++;
      return {data: EMPTY};
    }
    const hex = e.blob.slice(3);
    // A spilled file holds the blob's bytes (its name is their digest; they were checked when
    // it was written, and verify re-hashes it), so a blob that has one needs no index lookup:
    // that lookup, a LevelDB read of up to 16 KiB, was most of a build once the files exist.
    if (e.size > inlineMax && e.size <= INLINE_MAX && spilledExists(hex)) {
      counts.spilledRefs++;
      return {size: e.size, redirect: `/small/${hex.slice(0, 2)}/${hex.slice(2)}`};
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
    counts.spilledRefs++;
    spills.set(e.blob, data);
    return {size: e.size, redirect: `/small/${hex.slice(0, 2)}/${hex.slice(2)}`};
  };

  const visit = async (tree: Tree, node: ErofsNode, at: string): Promise<void> => {
    for (const e of tree.entries) {
      const p = `${at}/${e.name}`;
      switch (e.kind) {
        case 'dir': {
          const child = await store.getTree(e.tree);
          await visit(child, erofs.mkdir(node, nameToBytes(e.name), metaOf(child)), p);
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
  await visit(rootTree, erofs.root, '');
  for (const {parent, path: p, entry} of links) {
    const target = files.get(entry.target);
    if (target && target.blob === entry.blob) erofs.link(parent, nameToBytes(entry.name), target.node);
    else files.set(p, {node: erofs.addFile(parent, nameToBytes(entry.name), metaOf(entry), content(entry)), blob: entry.blob});
  }
  return {erofs, spills, counts};
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
