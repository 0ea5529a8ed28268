import * as fs from 'node:fs';
import {ErofsError} from './errors.js';
import {type ErofsTree, KIND, KINDS} from './ErofsTree.js';
import {
  BLOCK_BITS, BLOCK_SIZE, DIRENT_SIZE, FEATURE_INCOMPAT_CHUNKED_FILE, FILE_TYPE, INODE_SIZE, I_VERSION_EXTENDED, LAYOUT, MAX_CHUNK_BITS,
  NULL_ADDR, SLOT_SIZE, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, SUPER_MAGIC, XATTR_IBODY_HEADER_SIZE,
  S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, align, encodeDev,
} from './format.js';
import {ASCII, METACOPY_ENTRY, REDIRECT_SUFFIX, type XattrEntry, inodeXattrs, putXattrEntry, redirectEntry, redirectEntrySize} from './xattrs.js';

export interface ErofsWriteOptions {
  /** The volume UUID (16 bytes); all zero by default. Part of the image, so give a value derived from the content to keep images reproducible. */
  readonly uuid?: Buffer;
  /** The superblock's build time, in seconds; 0 by default (no clock is read, so the same tree gives the same bytes). */
  readonly buildTime?: number;
  /**
   * Bytes for the start of the image, before the superblock (at most 1024): EROFS leaves
   * its first 1 KiB to boot loaders, and neither the kernel nor fsck.erofs reads it, so a
   * caller can keep a small record of its own there (strata: the packs an image needs).
   * Zeros by default.
   */
  readonly head?: Buffer;
  /**
   * The bytes of a file added with `dataRef` (called with that number, as the writer
   * reaches the file: once for a file that fits beside its inode or fills whole blocks,
   * twice for one with both blocks and a packed tail). They must be as many as the size
   * the file was added with (else EROFS_BAD_ENTRY); a throw ends the write part-way.
   */
  readonly readData?: (ref: number) => Buffer;
}

/** What was written. */
export interface ErofsStats {
  readonly bytes: number;
  readonly inodes: number;
  readonly blocks: number;
  /** Distinct (name, value) xattrs stored once in the shared area. */
  readonly sharedXattrs: number;
}

/** Up to this many bytes of a directory's last block or a file's tail are kept beside the inode (as composefs does: at most half a block, so padding stays small). */
const TAIL_INLINE_MAX = BLOCK_SIZE / 2;
/** An inode can list at most 255 shared xattrs (h_shared_count is a u8). */
const MAX_SHARED_PER_INODE = 255;

/** Dirent codes besides entry indexes: `.` and `..`. */
const DOT = -1;
const DOTDOT = -2;
const DOT_NAME = Buffer.from('.');
const DOTDOT_NAME = Buffer.from('..');

/** An inode's xattrs when it has some of its own (the rest are described by their redirect alone). */
interface OwnXattrs {
  readonly shared: XattrEntry[];
  readonly inline: XattrEntry[];
}

/**
 * Writes `tree` as an EROFS image through `sink`, in order, in chunks of up to 1 MiB:
 * the superblock, every inode (extended, 64 bytes) with its xattrs and packed tail, the
 * shared xattrs, then the data blocks (directory blocks, file bytes, long symlinks).
 * The same tree and options give the same bytes. Throws ErofsError EROFS_DUPLICATE_NAME,
 * EROFS_BAD_XATTR, EROFS_TOO_LARGE before the first byte reaches `sink`.
 *
 * The layout is computed in columns (typed arrays indexed by the inode's place in the
 * image), not in an object per inode: a metacopy file with no xattrs of its own, most of
 * a metadata image, is described by its redirect alone and costs no allocation.
 */
export function writeErofs(tree: ErofsTree, sink: (chunk: Buffer) => void, options: ErofsWriteOptions = {}): ErofsStats {
  const n = tree.count;
  const {kind, data, dataRef, redirect, names} = tree;
  /** Whether a file's bytes are stored in the image (given, or read when written). */
  const stored = (inode: number) => data[inode] !== undefined || dataRef[inode] !== undefined;
  /** A stored file's bytes (a symlink's target). */
  const bytesOf = (inode: number): Buffer => {
    const d = data[inode];
    if (d) return d;
    if (!options.readData) throw new TypeError('assertion failed: a tree with dataRef files needs readData');
    const b = options.readData(dataRef[inode]!);
    if (b.length !== tree.size[inode]) throw new ErofsError('EROFS_BAD_ENTRY', `a file added with ${tree.size[inode]} bytes (dataRef ${dataRef[inode]}) was given ${b.length} by readData`);
    return b;
  };
  // Inodes in breadth-first order: a directory's children are neighbours on disk.
  // slot[inode] is its place (-1: not reached yet), order[place] the inode.
  const slot = new Int32Array(n).fill(-1);
  const order = new Int32Array(n);
  // Each directory's entries, sorted, with `.` and `..` (dirents[direntAt[place] ...]), and where its blocks start.
  const dirents = new Int32Array(tree.entries + 2 * countDirs(tree));
  const direntAt = new Int32Array(n);
  const direntCount = new Int32Array(n);
  const blockStarts: number[] = [];
  const blockAt = new Int32Array(n);
  const blockCount = new Int32Array(n);
  let queued = 1, direntsUsed = 0;
  order[0] = 0;
  slot[0] = 0;
  const nameBuf = (d: number) => (d === DOT ? DOT_NAME : d === DOTDOT ? DOTDOT_NAME : names);
  const nameStart = (d: number) => (d < 0 ? 0 : tree.entryNameAt[d]!);
  const nameLen = (d: number) => (d === DOT ? 1 : d === DOTDOT ? 2 : tree.entryNameLen[d]!);
  // By their bytes, in a loop: names are short and differ early, where Buffer#compare's
  // argument checks cost more than the comparison.
  const compare = (a: number, b: number) => {
    const x = nameBuf(a), y = nameBuf(b), i = nameStart(a), j = nameStart(b), la = nameLen(a), lb = nameLen(b);
    for (let k = 0, n = Math.min(la, lb); k < n; k++) {
      const d = x[i + k]! - y[j + k]!;
      if (d !== 0) return d;
    }
    return la - lb;
  };
  const direntInode = (dir: number, d: number) => (d === DOT ? dir : d === DOTDOT ? tree.parent[dir]! : tree.entryInode[d]!);

  // Xattrs: counted first (a (name, value) pair that more than one inode carries is stored
  // once), placed after. The empty metacopy and redirects are counted apart from the rest.
  const own = new Map<number, XattrEntry[]>(); // by place
  const counts = new Map<string, number>();
  const entries = new Map<string, XattrEntry>();
  const redirects = new Map<string, number>();
  let metacopies = 0;

  for (let i = 0; i < queued; i++) {
    const inode = order[i]!;
    const k = kind[inode]!;
    const xattrs = tree.xattrs.get(inode);
    const r = k === KIND.file && !stored(inode) && tree.size[inode]! > 0 ? redirect[inode] : undefined;
    if (xattrs) {
      const list = inodeXattrs(xattrs, r, () => (k === KIND.dir ? `directory ${tree.pathOf(inode)}` : `an inode of ${k === KIND.file ? 'a file' : `kind ${KINDS[k]}`}`));
      own.set(i, list);
      for (const e of list) {
        if (e === METACOPY_ENTRY) metacopies++;
        else if (e.redirect !== undefined) redirects.set(e.redirect, (redirects.get(e.redirect) ?? 0) + 1);
        else {
          counts.set(e.key, (counts.get(e.key) ?? 0) + 1);
          if (!entries.has(e.key)) entries.set(e.key, e);
        }
      }
    } else if (r !== undefined) {
      metacopies++;
      redirects.set(r, (redirects.get(r) ?? 0) + 1);
    }
    if (k !== KIND.dir) continue;
    // The directory's dirents, sorted by their bytes, "." and ".." among them: the
    // kernel's lookup is a binary search. A store's trees come sorted: then "." and ".."
    // are merged in, and only a directory whose entries are not in order is sorted.
    const at = direntsUsed;
    direntAt[i] = at;
    let sorted = true;
    let prev = -3;
    for (let e = tree.firstEntry[inode]!; e >= 0; e = tree.entryNext[e]!) {
      if (prev !== -3 && compare(prev, e) >= 0) sorted = false;
      dirents[direntsUsed++] = e;
      prev = e;
    }
    if (sorted) {
      // Merge "." and ".." (in that order: "." < "..") into the sorted names.
      const count = direntsUsed - at;
      const merged = new Int32Array(count + 2);
      let a = 0, m = 0;
      for (const dot of [DOT, DOTDOT]) {
        while (a < count && compare(dirents[at + a]!, dot) < 0) merged[m++] = dirents[at + a++]!;
        merged[m++] = dot;
      }
      while (a < count) merged[m++] = dirents[at + a++]!;
      dirents.set(merged, at);
      direntsUsed = at + count + 2;
    } else {
      const list = Array.from(dirents.subarray(at, direntsUsed));
      list.push(DOT, DOTDOT);
      list.sort(compare);
      for (let j = 1; j < list.length; j++) {
        if (compare(list[j - 1]!, list[j]!) === 0)
          throw new ErofsError('EROFS_DUPLICATE_NAME', `directory ${tree.pathOf(inode)} has two entries named ${JSON.stringify(nameBuf(list[j]!).toString('latin1', nameStart(list[j]!), nameStart(list[j]!) + nameLen(list[j]!)))}`);
      }
      dirents.set(list, at);
      direntsUsed = at + list.length;
    }
    // Cut into blocks.
    blockAt[i] = blockStarts.length;
    blockStarts.push(0);
    let used = 0;
    for (let j = 0; j < direntsUsed - at; j++) {
      const len = DIRENT_SIZE + nameLen(dirents[at + j]!);
      if (used + len > BLOCK_SIZE) {
        blockStarts.push(j);
        used = 0;
      }
      used += len;
    }
    direntCount[i] = direntsUsed - at;
    blockCount[i] = blockStarts.length - blockAt[i]!;
    for (let j = at; j < direntsUsed; j++) {
      const c = direntInode(inode, dirents[j]!);
      if (slot[c]! < 0) {
        slot[c] = queued;
        order[queued++] = c;
      }
    }
  }
  if (queued !== n) throw new TypeError(`assertion failed: ${n - queued} inodes are not reachable from the root`);
  const dirBlocks = (i: number) => blockCount[i]!;

  // The shared area: every (name, value) carried more than once, ordered by name and value.
  const shared: XattrEntry[] = [];
  if (metacopies > 1) shared.push(METACOPY_ENTRY);
  for (const [r, c] of redirects) if (c > 1) shared.push(redirectEntry(r));
  for (const [key, c] of counts) if (c > 1) shared.push(entries.get(key)!);
  shared.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const isShared = (e: XattrEntry) => (e === METACOPY_ENTRY ? metacopies > 1 : e.redirect !== undefined ? redirects.get(e.redirect)! > 1 : counts.get(e.key)! > 1);
  const metacopyShared = metacopies > 1;

  // Place the inodes from just after the superblock (meta_blkaddr 0).
  const xattrSize = new Uint32Array(n);
  const ownPlaced = new Map<number, OwnXattrs>();
  const layout = new Uint8Array(n);
  const chunkFormat = new Uint8Array(n);
  const blocks = new Float64Array(n);
  const blkaddr = new Float64Array(n);
  const tail = new Uint32Array(n);
  const isize = new Float64Array(n);
  const offset = new Float64Array(n);
  const redirectBytes = (r: string) => (ASCII.test(r) ? r.length : Buffer.byteLength(r));
  let pos = SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE;
  for (let i = 0; i < queued; i++) {
    const inode = order[i]!;
    const k = kind[inode]!;
    const list = own.get(i);
    if (list) {
      const o: OwnXattrs = {shared: [], inline: []};
      for (const e of list) {
        if (isShared(e) && o.shared.length < MAX_SHARED_PER_INODE) o.shared.push(e);
        else o.inline.push(e);
      }
      ownPlaced.set(i, o);
      xattrSize[i] = list.length === 0 ? 0 : XATTR_IBODY_HEADER_SIZE + 4 * o.shared.length + o.inline.reduce((sum, e) => sum + e.size, 0);
    } else if (k === KIND.file && !stored(inode) && tree.size[inode]! > 0 && redirect[inode] !== undefined) {
      const r = redirect[inode]!;
      const rShared = redirects.get(r)! > 1;
      xattrSize[i] = XATTR_IBODY_HEADER_SIZE + (metacopyShared ? 4 : METACOPY_ENTRY.size) + (rShared ? 4 : redirectEntrySize(redirectBytes(r)));
    }
    // Data layout, block count and tail, once the xattr size is known.
    const room = BLOCK_SIZE - INODE_SIZE - xattrSize[i]!;
    if (k === KIND.dir) {
      const nb = dirBlocks(i);
      const last = nb - 1;
      const t = direntBytes(i, last);
      if (t <= TAIL_INLINE_MAX && t <= room) {
        layout[i] = LAYOUT.flatInline;
        blocks[i] = last;
        tail[i] = t;
        isize[i] = last * BLOCK_SIZE + t;
      } else {
        blocks[i] = last + 1;
        isize[i] = blocks[i]! * BLOCK_SIZE;
      }
    } else if (k === KIND.file) {
      const size = tree.size[inode]!;
      if (stored(inode)) {
        isize[i] = size;
        const t = size % BLOCK_SIZE;
        if (t > 0 && t <= TAIL_INLINE_MAX && t <= room) {
          layout[i] = LAYOUT.flatInline;
          blocks[i] = Math.floor(size / BLOCK_SIZE);
          tail[i] = t;
        } else {
          blocks[i] = Math.ceil(size / BLOCK_SIZE);
        }
      } else if (size > 0) {
        // A size and no data: one chunk as large as needed (up to 8 TiB each), every
        // chunk a hole (NULL_ADDR), as composefs writes metacopy files.
        let bits = 0;
        while (bits < MAX_CHUNK_BITS && BLOCK_SIZE * 2 ** bits < size) bits++;
        layout[i] = LAYOUT.chunkBased;
        chunkFormat[i] = bits;
        isize[i] = size;
        tail[i] = 4 * Math.ceil(size / (BLOCK_SIZE * 2 ** bits));
      }
    } else if (k === KIND.symlink) {
      const size = data[inode]!.length;
      isize[i] = size;
      if (size <= room) {
        layout[i] = LAYOUT.flatInline;
        tail[i] = size;
      } else {
        blocks[i] = 1;
      }
    }
    pos = align(pos, SLOT_SIZE);
    const region = INODE_SIZE + xattrSize[i]! + tail[i]!;
    // Keep an inode with its xattrs and tail inside one block when they fit in one: a
    // packed tail must not cross a block (the kernel refuses it), and a fast symlink's
    // target must share the inode's block.
    if (region <= BLOCK_SIZE && Math.floor(pos / BLOCK_SIZE) !== Math.floor((pos + region - 1) / BLOCK_SIZE)) pos = align(pos, BLOCK_SIZE);
    offset[i] = pos;
    pos += region;
  }
  const inodesEnd = align(pos, SLOT_SIZE);
  const rootNid = offset[0]! / SLOT_SIZE;
  if (rootNid > 0xffff) throw new ErofsError('EROFS_TOO_LARGE', 'the root inode does not fit in the first 2 MiB of the image');

  // Shared xattr ids count 4-byte units from the start of the block the area starts in.
  const xattrBlkaddr = Math.floor(inodesEnd / BLOCK_SIZE);
  let sharedAt = inodesEnd - xattrBlkaddr * BLOCK_SIZE;
  const sharedId = new Map<XattrEntry | string, number>(); // by entry; a redirect by its string
  let metacopyId = -1;
  for (const e of shared) {
    const id = sharedAt / 4;
    if (e === METACOPY_ENTRY) metacopyId = id;
    else if (e.redirect !== undefined) sharedId.set(e.redirect, id);
    else sharedId.set(e.key, id);
    sharedAt += e.size;
  }
  const idOf = (e: XattrEntry) => (e === METACOPY_ENTRY ? metacopyId : sharedId.get(e.redirect ?? e.key)!);
  const sharedSize = sharedAt - (inodesEnd - xattrBlkaddr * BLOCK_SIZE);

  // Data blocks follow, in inode order.
  const dataStart = align(inodesEnd + sharedSize, BLOCK_SIZE) / BLOCK_SIZE;
  let nextBlock = dataStart;
  let chunked = false;
  for (let i = 0; i < queued; i++) {
    if (blocks[i]! > 0) {
      blkaddr[i] = nextBlock;
      nextBlock += blocks[i]!;
    }
    if (layout[i] === LAYOUT.chunkBased) chunked = true;
  }
  if (nextBlock > 0xffffffff) throw new ErofsError('EROFS_TOO_LARGE', `the image needs ${nextBlock} blocks; EROFS addresses at most 2^32`);

  const head = options.head ?? Buffer.alloc(0);
  if (head.length > SUPERBLOCK_OFFSET) throw new ErofsError('EROFS_TOO_LARGE', `the head before the superblock takes at most ${SUPERBLOCK_OFFSET} bytes, not ${head.length}`);

  /** Bytes used by directory block `b` of the directory at place i: its dirents and names. */
  function direntBytes(i: number, b: number): number {
    const base = direntAt[i]!;
    const first = blockStarts[blockAt[i]! + b]!;
    const end = b + 1 < dirBlocks(i) ? blockStarts[blockAt[i]! + b + 1]! : direntEnd(i) - base;
    let sum = 0;
    for (let j = first; j < end; j++) sum += DIRENT_SIZE + nameLen(dirents[base + j]!);
    return sum;
  }
  function direntEnd(i: number): number {
    return direntAt[i]! + direntCount[i]!;
  }
  /** Directory block `b` of the directory at place i, at `base` of a zeroed `buf`: dirents (nid, name offset, type), then the names. */
  function putDirentBlock(buf: Buffer, at0: number, i: number, b: number): void {
    const inode = order[i]!;
    const base = direntAt[i]!;
    const first = blockStarts[blockAt[i]! + b]!;
    const end = b + 1 < dirBlocks(i) ? blockStarts[blockAt[i]! + b + 1]! : direntEnd(i) - base;
    let nameAt = DIRENT_SIZE * (end - first);
    for (let j = first; j < end; j++) {
      const d = dirents[base + j]!;
      const child = direntInode(inode, d);
      const at = at0 + DIRENT_SIZE * (j - first);
      putU64(buf, offset[slot[child]!]! / SLOT_SIZE, at);
      buf.writeUInt16LE(nameAt, at + 8);
      buf.writeUInt8(FILE_TYPE[KINDS[kind[child]!]!], at + 10);
      const len = nameLen(d);
      buf.set(nameBuf(d).subarray(nameStart(d), nameStart(d) + len), at0 + nameAt);
      nameAt += len;
    }
  }

  const out = new Output(sink);
  out.put(head);
  out.zeros(SUPERBLOCK_OFFSET - head.length);
  out.put(superblock({rootNid, inodes: queued, blocks: nextBlock, xattrBlkaddr, incompat: chunked ? FEATURE_INCOMPAT_CHUNKED_FILE : 0, options}));
  for (let i = 0; i < queued; i++) {
    out.zeros(offset[i]! - out.pos);
    const size = INODE_SIZE + xattrSize[i]! + tail[i]!;
    const buf = out.reserve(size);
    const base = out.at;
    const inode = order[i]!;
    const k = kind[inode]!;
    buf.writeUInt16LE(I_VERSION_EXTENDED | (layout[i]! << 1), base);
    buf.writeUInt16LE(xattrSize[i] === 0 ? 0 : (xattrSize[i]! - XATTR_IBODY_HEADER_SIZE) / 4 + 1, base + 2);
    buf.writeUInt16LE(TYPE_BITS[k]! | tree.mode[inode]!, base + 4);
    putU64(buf, isize[i]!, base + 8);
    if (k === KIND.char || k === KIND.block) {
      const [major, minor] = tree.devices.get(inode)!;
      buf.writeUInt32LE(encodeDev(major, minor), base + 16);
    } else if (layout[i] === LAYOUT.chunkBased) buf.writeUInt16LE(chunkFormat[i]!, base + 16);
    else if (blocks[i]! > 0) buf.writeUInt32LE(blkaddr[i]!, base + 16);
    buf.writeUInt32LE(i + 1, base + 20); // i_ino: only for 32-bit stat; the kernel numbers inodes by nid
    buf.writeUInt32LE(tree.uid[inode]!, base + 24);
    buf.writeUInt32LE(tree.gid[inode]!, base + 28);
    putU64(buf, tree.mtime[inode]!, base + 32);
    buf.writeUInt32LE(tree.mtimeNsec[inode]!, base + 40);
    buf.writeUInt32LE(tree.nlink[inode]!, base + 44);
    const end = base + size;
    let at = base + INODE_SIZE;
    if (xattrSize[i]! > 0) {
      // ibody header: name filter 0 (the filter feature is off), shared count, 7 reserved bytes.
      const o = ownPlaced.get(i);
      if (o) {
        buf.writeUInt8(o.shared.length, at + 4);
        at += XATTR_IBODY_HEADER_SIZE;
        for (const e of o.shared) {
          buf.writeUInt32LE(idOf(e), at);
          at += 4;
        }
        for (const e of o.inline) at = putXattrEntry(buf, at, e);
      } else {
        // A metacopy file: the empty metacopy, then its redirect, each shared or inline.
        const r = redirect[inode]!;
        const rShared = redirects.get(r)! > 1;
        buf.writeUInt8((metacopyShared ? 1 : 0) + (rShared ? 1 : 0), at + 4);
        at += XATTR_IBODY_HEADER_SIZE;
        if (metacopyShared) {
          buf.writeUInt32LE(metacopyId, at);
          at += 4;
        }
        if (rShared) {
          buf.writeUInt32LE(sharedId.get(r)!, at);
          at += 4;
        }
        if (!metacopyShared) at = putXattrEntry(buf, at, METACOPY_ENTRY);
        if (!rShared) at = putRedirectEntry(buf, at, r);
      }
    }
    if (tail[i]! > 0) {
      if (layout[i] === LAYOUT.chunkBased) for (; at < end; at += 4) buf.writeUInt32LE(NULL_ADDR, at); // every chunk a hole
      else if (k === KIND.dir) putDirentBlock(buf, at, i, dirBlocks(i) - 1);
      else buf.set(bytesOf(inode).subarray(blocks[i]! * BLOCK_SIZE), at);
    }
    out.advance(size);
  }
  out.zeros(inodesEnd - out.pos);
  for (const e of shared) {
    putXattrEntry(out.reserve(e.size), out.at, e);
    out.advance(e.size);
  }
  out.zeros(dataStart * BLOCK_SIZE - out.pos);
  for (let i = 0; i < queued; i++) {
    const nb = blocks[i]!;
    if (nb === 0) continue;
    const inode = order[i]!;
    if (kind[inode] === KIND.dir) {
      for (let b = 0; b < nb; b++) {
        putDirentBlock(out.reserve(BLOCK_SIZE), out.at, i, b);
        out.advance(BLOCK_SIZE);
      }
    } else {
      // File bytes or a long symlink target; the last block is padded with zeros.
      const d = bytesOf(inode);
      const len = Math.min(d.length, nb * BLOCK_SIZE);
      out.put(len === d.length ? d : d.subarray(0, len));
      out.zeros(nb * BLOCK_SIZE - len);
    }
  }
  out.flush();
  if (out.pos !== nextBlock * BLOCK_SIZE) throw new TypeError(`assertion failed: wrote ${out.pos} bytes, planned ${nextBlock * BLOCK_SIZE}`);
  return {bytes: out.pos, inodes: queued, blocks: nextBlock, sharedXattrs: shared.length};
}

function countDirs(tree: ErofsTree): number {
  let dirs = 0;
  for (let i = 0; i < tree.count; i++) if (tree.kind[i] === KIND.dir) dirs++;
  return dirs;
}

/** A redirect entry written from its string, without a Buffer of its own. */
function putRedirectEntry(buf: Buffer, at: number, r: string): number {
  if (!ASCII.test(r)) return putXattrEntry(buf, at, redirectEntry(r));
  buf.writeUInt8(REDIRECT_SUFFIX.length, at);
  buf.writeUInt8(METACOPY_ENTRY.index, at + 1);
  buf.writeUInt16LE(r.length, at + 2);
  REDIRECT_SUFFIX.copy(buf, at + 4);
  buf.write(r, at + 4 + REDIRECT_SUFFIX.length, r.length, 'latin1');
  const size = redirectEntrySize(r.length);
  buf.fill(0, at + 4 + REDIRECT_SUFFIX.length + r.length, at + size);
  return at + size;
}

/** A safe integer as 64 bits little-endian (two's complement when negative), without BigInt. */
function putU64(buf: Buffer, v: number, at: number): void {
  buf.writeUInt32LE(v >>> 0, at);
  buf.writeInt32LE(Math.floor(v / 0x1_0000_0000), at + 4);
}

const TYPE_BITS = [S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO];

/** Writes the image into memory. */
export function erofsToBuffer(tree: ErofsTree, options?: ErofsWriteOptions): Buffer {
  const chunks: Buffer[] = [];
  writeErofs(tree, c => chunks.push(c), options);
  return Buffer.concat(chunks);
}

/**
 * Writes the image to a new file at `file` (which must not exist) and fsyncs it. The
 * caller renames it into place: a reader never sees a half-written image under its name.
 */
export function writeErofsFile(tree: ErofsTree, file: string, options?: ErofsWriteOptions): ErofsStats {
  const fd = fs.openSync(file, 'wx', 0o444);
  try {
    const stats = writeErofs(tree, chunk => {
      for (let at = 0; at < chunk.length;) at += fs.writeSync(fd, chunk, at);
    }, options);
    fs.fsyncSync(fd);
    return stats;
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(file, {force: true});
    throw err;
  } finally {
    try { fs.closeSync(fd); } catch { /* closed above */ }
  }
}

function superblock(s: {rootNid: number; inodes: number; blocks: number; xattrBlkaddr: number; incompat: number; options: ErofsWriteOptions}): Buffer {
  const b = Buffer.alloc(SUPERBLOCK_SIZE);
  b.writeUInt32LE(SUPER_MAGIC, 0);
  // checksum 0 and feature_compat 0: no superblock checksum, no xattr name filter.
  b.writeUInt8(BLOCK_BITS, 12);
  b.writeUInt16LE(s.rootNid, 14);
  b.writeBigUInt64LE(BigInt(s.inodes), 16);
  b.writeBigUInt64LE(BigInt(s.options.buildTime ?? 0), 24);
  b.writeUInt32LE(s.blocks, 36);
  // meta_blkaddr 0: nids count from the start of the image.
  b.writeUInt32LE(s.xattrBlkaddr, 44);
  if (s.options.uuid) {
    if (s.options.uuid.length !== 16) throw new TypeError('assertion failed: a uuid is 16 bytes');
    s.options.uuid.copy(b, 48);
  }
  b.writeUInt32LE(s.incompat, 80);
  return b;
}


/** Buffers writes into chunks of up to 1 MiB; `pos` is the image offset of the next byte. */
class Output {
  private buf = Buffer.alloc(1 << 20);
  private offset = 0;
  private flushed = 0;
  constructor(private readonly sink: (chunk: Buffer) => void) {}
  get pos(): number {
    return this.flushed + this.offset;
  }
  /** The chunk buffer, with at least `n` (at most 1 MiB) zero bytes free from `at`. */
  reserve(n: number): Buffer {
    if (n > this.buf.length - this.offset) this.flush();
    return this.buf;
  }
  get at(): number {
    return this.offset;
  }
  advance(n: number): void {
    this.offset += n;
  }
  put(b: Buffer): void {
    if (b.length > this.buf.length - this.offset) {
      this.flush();
      if (b.length > this.buf.length) {
        this.sink(b);
        this.flushed += b.length;
        return;
      }
    }
    this.buf.set(b, this.offset); // TypedArray#set: Buffer#copy's argument checks cost more than a small file's bytes
    this.offset += b.length;
  }
  zeros(n: number): void {
    if (n < 0) throw new TypeError(`assertion failed: layout overlaps by ${-n} bytes`);
    while (n > 0) {
      if (this.offset === this.buf.length) this.flush();
      const k = Math.min(n, this.buf.length - this.offset);
      this.offset += k; // the buffer is zeroed when allocated
      n -= k;
    }
  }
  flush(): void {
    if (this.offset === 0) return;
    this.sink(this.buf.subarray(0, this.offset));
    this.flushed += this.offset;
    this.buf = Buffer.alloc(1 << 20);
    this.offset = 0;
  }
}
