import * as fs from 'node:fs';
import {ErofsError} from './errors.js';
import {type ErofsTree, type Inode, pathOf} from './ErofsTree.js';
import {
  BLOCK_BITS, BLOCK_SIZE, DIRENT_SIZE, FEATURE_INCOMPAT_CHUNKED_FILE, FILE_TYPE, INODE_SIZE, I_VERSION_EXTENDED, LAYOUT, MAX_CHUNK_BITS,
  NULL_ADDR, SLOT_SIZE, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, SUPER_MAGIC, XATTR_IBODY_HEADER_SIZE,
  S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, align, encodeDev,
} from './format.js';
import {type XattrEntry, inodeXattrs, putXattrEntry} from './xattrs.js';

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

interface Dirent {
  readonly name: Buffer;
  readonly inode: Inode;
}

/** Where one inode and its data go, decided before anything is written. */
interface Placed {
  readonly inode: Inode;
  xattrs: XattrEntry[];
  /** Keys of the xattrs kept in the shared area, and their ids there. */
  sharedKeys: string[];
  sharedIds: number[];
  /** The xattrs kept in the inode itself. */
  inline: XattrEntry[];
  /** i_xattr_icount's byte size: header, shared ids, inline entries. */
  xattrSize: number;
  layout: number;
  /** Whole blocks in the data area, from `blkaddr`. */
  blocks: number;
  blkaddr: number;
  /** Bytes right after the inode and its xattrs: a packed tail, or a chunk map. */
  tail: number;
  /** i_size */
  size: number;
  chunkFormat: number;
  /** Directories: entries sorted, with `.` and `..`, and where each block starts. */
  dirents?: Dirent[];
  blockStarts?: number[];
  /** Byte offset of the inode; nid = offset / 32. */
  offset: number;
}

/**
 * Writes `tree` as an EROFS image through `sink`, in order, in chunks of up to 1 MiB:
 * the superblock, every inode (extended, 64 bytes) with its xattrs and packed tail, the
 * shared xattrs, then the data blocks (directory blocks, file bytes, long symlinks).
 * The same tree and options give the same bytes. Throws ErofsError EROFS_DUPLICATE_NAME,
 * EROFS_BAD_XATTR, EROFS_TOO_LARGE before the first byte reaches `sink`.
 */
export function writeErofs(tree: ErofsTree, sink: (chunk: Buffer) => void, options: ErofsWriteOptions = {}): ErofsStats {
  // Inodes in breadth-first order: a directory's children are neighbours on disk.
  // An inode's slot is its index in `placed` (-1: not reached yet).
  for (const inode of tree.inodes) inode.slot = -1;
  const placed: Placed[] = [];
  const queue: Inode[] = [tree.inodes[0]!];
  queue[0]!.slot = 0;
  for (let i = 0; i < queue.length; i++) {
    const p = planInode(queue[i]!);
    placed.push(p);
    for (const c of p.dirents ?? []) {
      if (c.inode.slot < 0) {
        c.inode.slot = queue.length;
        queue.push(c.inode);
      }
    }
  }

  // Shared xattrs: every (name, value) that more than one inode carries, stored once.
  const counts = new Map<string, {entry: XattrEntry; count: number; id: number}>();
  for (const p of placed) {
    for (const e of p.xattrs) {
      const c = counts.get(e.key);
      if (c) c.count++;
      else counts.set(e.key, {entry: e, count: 1, id: -1});
    }
  }
  const shared = [...counts.values()].filter(c => c.count > 1).sort((a, b) => (a.entry.key < b.entry.key ? -1 : a.entry.key > b.entry.key ? 1 : 0));

  // Place the inodes from just after the superblock (meta_blkaddr 0).
  let pos = SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE;
  const sharedSize = shared.reduce((n, c) => n + c.entry.size, 0);
  for (const p of placed) {
    for (const e of p.xattrs) {
      if (counts.get(e.key)!.count > 1 && p.sharedKeys.length < MAX_SHARED_PER_INODE) p.sharedKeys.push(e.key);
      else p.inline.push(e);
    }
    const inlineSize = p.inline.reduce((n, e) => n + e.size, 0);
    p.xattrSize = p.xattrs.length === 0 ? 0 : XATTR_IBODY_HEADER_SIZE + 4 * p.sharedKeys.length + inlineSize;
    finishLayout(p);
    pos = align(pos, SLOT_SIZE);
    const region = INODE_SIZE + p.xattrSize + p.tail;
    // Keep an inode with its xattrs and tail inside one block when they fit in one: a
    // packed tail must not cross a block (the kernel refuses it), and a fast symlink's
    // target must share the inode's block.
    if (region <= BLOCK_SIZE && Math.floor(pos / BLOCK_SIZE) !== Math.floor((pos + region - 1) / BLOCK_SIZE)) pos = align(pos, BLOCK_SIZE);
    p.offset = pos;
    pos += region;
  }
  const inodesEnd = align(pos, SLOT_SIZE);
  const rootNid = placed[0]!.offset / SLOT_SIZE;
  if (rootNid > 0xffff) throw new ErofsError('EROFS_TOO_LARGE', 'the root inode does not fit in the first 2 MiB of the image');

  // Shared xattr ids count 4-byte units from the start of the block the area starts in.
  const xattrBlkaddr = Math.floor(inodesEnd / BLOCK_SIZE);
  let sharedAt = inodesEnd - xattrBlkaddr * BLOCK_SIZE;
  for (const c of shared) {
    c.id = sharedAt / 4;
    sharedAt += c.entry.size;
  }
  for (const p of placed) p.sharedIds = p.sharedKeys.map(k => counts.get(k)!.id);

  // Data blocks follow, in inode order.
  const dataStart = align(inodesEnd + sharedSize, BLOCK_SIZE) / BLOCK_SIZE;
  let nextBlock = dataStart;
  let chunked = false;
  for (const p of placed) {
    if (p.blocks > 0) {
      p.blkaddr = nextBlock;
      nextBlock += p.blocks;
    }
    if (p.layout === LAYOUT.chunkBased) chunked = true;
  }
  if (nextBlock > 0xffffffff) throw new ErofsError('EROFS_TOO_LARGE', `the image needs ${nextBlock} blocks; EROFS addresses at most 2^32`);

  const head = options.head ?? Buffer.alloc(0);
  if (head.length > SUPERBLOCK_OFFSET) throw new ErofsError('EROFS_TOO_LARGE', `the head before the superblock takes at most ${SUPERBLOCK_OFFSET} bytes, not ${head.length}`);
  const out = new Output(sink);
  out.put(head);
  out.zeros(SUPERBLOCK_OFFSET - head.length);
  out.put(superblock({rootNid, inodes: placed.length, blocks: nextBlock, xattrBlkaddr, incompat: chunked ? FEATURE_INCOMPAT_CHUNKED_FILE : 0, options}));
  for (const p of placed) {
    out.zeros(p.offset - out.pos);
    const size = INODE_SIZE + p.xattrSize + p.tail;
    putInode(out.reserve(size), out.at, p, placed);
    out.advance(size);
  }
  out.zeros(inodesEnd - out.pos);
  for (const c of shared) {
    putXattrEntry(out.reserve(c.entry.size), out.at, c.entry);
    out.advance(c.entry.size);
  }
  out.zeros(dataStart * BLOCK_SIZE - out.pos);
  for (const p of placed) {
    if (p.blocks === 0) continue;
    if (p.dirents) {
      for (let b = 0; b < p.blocks; b++) {
        putDirentBlock(out.reserve(BLOCK_SIZE), out.at, p, b, placed);
        out.advance(BLOCK_SIZE);
      }
    } else {
      // File bytes or a long symlink target; the last block is padded with zeros.
      const data = p.inode.data!;
      out.put(data.subarray(0, Math.min(data.length, p.blocks * BLOCK_SIZE)));
      out.zeros(p.blocks * BLOCK_SIZE - Math.min(data.length, p.blocks * BLOCK_SIZE));
    }
  }
  out.flush();
  if (out.pos !== nextBlock * BLOCK_SIZE) throw new TypeError(`assertion failed: wrote ${out.pos} bytes, planned ${nextBlock * BLOCK_SIZE}`);
  return {bytes: out.pos, inodes: placed.length, blocks: nextBlock, sharedXattrs: shared.length};
}

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

/** What every inode needs before positions are known: xattrs and, for directories, the sorted entries. */
function planInode(inode: Inode): Placed {
  const where = () => (inode.kind === 'dir' ? pathOf(inode) : `an inode of ${inode.kind === 'file' ? 'a file' : `kind ${inode.kind}`}`);
  const p: Placed = {inode, xattrs: inodeXattrs(inode, where), sharedKeys: [], sharedIds: [], inline: [], xattrSize: 0, layout: LAYOUT.flatPlain, blocks: 0, blkaddr: 0, tail: 0, size: 0, chunkFormat: 0, offset: 0};
  if (inode.kind === 'dir') {
    const dirents: Dirent[] = [{name: DOT, inode}, {name: DOTDOT, inode: inode.parent ?? inode}, ...inode.children!];
    // Entries sorted by their bytes, "." and ".." among them: the kernel's lookup is a binary search.
    dirents.sort((a, b) => Buffer.compare(a.name, b.name));
    for (let i = 1; i < dirents.length; i++) {
      if (dirents[i]!.name.equals(dirents[i - 1]!.name))
        throw new ErofsError('EROFS_DUPLICATE_NAME', `directory ${pathOf(inode)} has two entries named ${JSON.stringify(dirents[i]!.name.toString('latin1'))}`);
    }
    const starts = [0];
    let used = 0;
    for (let i = 0; i < dirents.length; i++) {
      const len = DIRENT_SIZE + dirents[i]!.name.length;
      if (used + len > BLOCK_SIZE) {
        starts.push(i);
        used = 0;
      }
      used += len;
    }
    p.dirents = dirents;
    p.blockStarts = starts;
  }
  return p;
}

/** Decides data layout, block count and tail once the xattr size is known. */
function finishLayout(p: Placed): void {
  const inode = p.inode;
  const room = BLOCK_SIZE - INODE_SIZE - p.xattrSize;
  if (p.dirents) {
    const last = p.blockStarts!.length - 1;
    const tail = blockBytes(p, last);
    if (tail <= TAIL_INLINE_MAX && tail <= room) {
      setTail(p, last, tail);
    } else {
      p.blocks = last + 1;
      p.size = p.blocks * BLOCK_SIZE;
    }
    return;
  }
  switch (inode.kind) {
    case 'file':
      if (inode.data) {
        p.size = inode.data.length;
        const tail = p.size % BLOCK_SIZE;
        if (tail > 0 && tail <= TAIL_INLINE_MAX && tail <= room) setTail(p, Math.floor(p.size / BLOCK_SIZE), tail);
        else p.blocks = Math.ceil(p.size / BLOCK_SIZE);
      } else if (inode.size > 0) {
        // A size and no data: one chunk as large as needed (up to 8 TiB each), every
        // chunk a hole (NULL_ADDR), as composefs writes metacopy files.
        let bits = 0;
        while (bits < MAX_CHUNK_BITS && BLOCK_SIZE * 2 ** bits < inode.size) bits++;
        p.layout = LAYOUT.chunkBased;
        p.chunkFormat = bits;
        p.size = inode.size;
        p.tail = 4 * Math.ceil(inode.size / (BLOCK_SIZE * 2 ** bits));
      }
      return;
    case 'symlink':
      p.size = inode.data!.length;
      if (p.size <= room) setTail(p, 0, p.size);
      else p.blocks = 1;
      return;
    default:
      return;
  }
}

function setTail(p: Placed, fullBlocks: number, tail: number): void {
  p.layout = LAYOUT.flatInline;
  p.blocks = fullBlocks;
  p.tail = tail;
  p.size = fullBlocks * BLOCK_SIZE + tail;
}

/** Bytes used by directory block `b`: its dirents and names. */
function blockBytes(p: Placed, b: number): number {
  const end = p.blockStarts![b + 1] ?? p.dirents!.length;
  let n = 0;
  for (let i = p.blockStarts![b]!; i < end; i++) n += DIRENT_SIZE + p.dirents![i]!.name.length;
  return n;
}

/**
 * Directory block `b` at `base` of a zeroed `buf`: dirents (nid, name offset, type), then
 * the names. Zeros after the last name end it (the kernel reads it with strnlen).
 */
function putDirentBlock(buf: Buffer, base: number, p: Placed, b: number, placed: Placed[]): void {
  const start = p.blockStarts![b]!;
  const end = p.blockStarts![b + 1] ?? p.dirents!.length;
  let nameAt = DIRENT_SIZE * (end - start);
  for (let i = start; i < end; i++) {
    const d = p.dirents![i]!;
    const at = base + DIRENT_SIZE * (i - start);
    putU64(buf, placed[d.inode.slot]!.offset / SLOT_SIZE, at);
    buf.writeUInt16LE(nameAt, at + 8);
    buf.writeUInt8(FILE_TYPE[d.inode.kind], at + 10);
    d.name.copy(buf, base + nameAt);
    nameAt += d.name.length;
  }
}

/** A safe integer as 64 bits little-endian (two's complement when negative), without BigInt. */
function putU64(buf: Buffer, v: number, at: number): void {
  buf.writeUInt32LE(v >>> 0, at);
  buf.writeInt32LE(Math.floor(v / 0x1_0000_0000), at + 4);
}

const TYPE_BITS = {dir: S_IFDIR, file: S_IFREG, symlink: S_IFLNK, char: S_IFCHR, block: S_IFBLK, fifo: S_IFIFO} as const;

/** The 64-byte extended inode, its xattr body and its tail (packed data or chunk map), at `base` of a zeroed `buf`. */
function putInode(buf: Buffer, base: number, p: Placed, placed: Placed[]): void {
  const inode = p.inode;
  const m = inode.meta;
  buf.writeUInt16LE(I_VERSION_EXTENDED | (p.layout << 1), base);
  buf.writeUInt16LE(p.xattrSize === 0 ? 0 : (p.xattrSize - XATTR_IBODY_HEADER_SIZE) / 4 + 1, base + 2);
  buf.writeUInt16LE(TYPE_BITS[inode.kind] | m.mode, base + 4);
  putU64(buf, p.size, base + 8);
  if (inode.kind === 'char' || inode.kind === 'block') buf.writeUInt32LE(encodeDev(inode.major, inode.minor), base + 16);
  else if (p.layout === LAYOUT.chunkBased) buf.writeUInt16LE(p.chunkFormat, base + 16);
  else if (p.blocks > 0) buf.writeUInt32LE(p.blkaddr, base + 16);
  buf.writeUInt32LE(inode.slot + 1, base + 20); // i_ino: only for 32-bit stat; the kernel numbers inodes by nid
  buf.writeUInt32LE(m.uid, base + 24);
  buf.writeUInt32LE(m.gid, base + 28);
  putU64(buf, m.mtime, base + 32);
  buf.writeUInt32LE(m.mtimeNsec ?? 0, base + 40);
  buf.writeUInt32LE(inode.nlink, base + 44);
  const end = base + INODE_SIZE + p.xattrSize + p.tail;
  let at = base + INODE_SIZE;
  if (p.xattrSize > 0) {
    // ibody header: name filter 0 (the filter feature is off), shared count, 7 reserved bytes.
    buf.writeUInt8(p.sharedIds.length, at + 4);
    at += XATTR_IBODY_HEADER_SIZE;
    for (const id of p.sharedIds) {
      buf.writeUInt32LE(id, at);
      at += 4;
    }
    for (const e of p.inline) at = putXattrEntry(buf, at, e);
  }
  if (p.tail > 0) {
    if (p.layout === LAYOUT.chunkBased) for (; at < end; at += 4) buf.writeUInt32LE(NULL_ADDR, at); // every chunk a hole
    else if (p.dirents) putDirentBlock(buf, at, p, p.blockStarts!.length - 1, placed);
    else inode.data!.copy(buf, at, p.blocks * BLOCK_SIZE);
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

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

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
    b.copy(this.buf, this.offset);
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
