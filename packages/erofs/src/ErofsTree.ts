import {ErofsError} from './errors.js';
import {MAX_NAME} from './format.js';

/** What an inode is. Sockets are left out: no strata tree holds one. */
export type ErofsKind = 'dir' | 'file' | 'symlink' | 'char' | 'block' | 'fifo';

/** Owner, permissions, time and xattrs of one inode. */
export interface ErofsMeta {
  /** Permission bits only (0o7777); the kind gives the file type. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Whole seconds since the epoch; may be negative. */
  readonly mtime: number;
  readonly mtimeNsec?: number;
  /** Full names (`user.x`, `security.capability`…) to raw values. */
  readonly xattrs?: Readonly<Record<string, Buffer>>;
}

/**
 * A regular file's content: its bytes, stored in the image (`data`), or only its size,
 * with no data in the image: with `redirect` (an absolute path in overlayfs's data-only
 * lower layer) it is a composefs "metacopy" file whose bytes the overlay reads from there;
 * without, a file of holes.
 */
export type FileContent = {readonly data: Buffer} | {readonly size: number; readonly redirect?: string};

/** A handle to an inode of an `ErofsTree` (its index). */
export type ErofsNode = number & {readonly __brand: 'ErofsNode'};

/** One inode. Fields are filled by the builder; layout fields by the writer. */
export interface Inode {
  readonly kind: ErofsKind;
  readonly meta: ErofsMeta;
  nlink: number;
  /** Directories: entries in the order they were added (the writer sorts them). */
  readonly children?: {readonly name: Buffer; readonly inode: Inode}[];
  readonly parent?: Inode;
  /** The name under which a directory was added (for error messages). */
  readonly name?: Buffer;
  /** File bytes stored in the image, or a symlink's target. */
  readonly data?: Buffer;
  /** A file's size (data.length when it has data). */
  readonly size: number;
  readonly redirect?: string;
  readonly major: number;
  readonly minor: number;
  /** Owned by the writer: the inode's position in the image's inode order. */
  slot: number;
}

const encodeName = (name: Buffer | string) => (typeof name === 'string' ? Buffer.from(name, 'utf8') : name);

/**
 * The abstract description of a tree that `writeErofs` turns into an image: every name,
 * inode and xattr, built in memory at a small cost per entry (one object per inode, one
 * per name; file contents are referenced, not copied). Entries may be added in any order;
 * directories are sorted when written. Names are bytes (a string is taken as UTF-8).
 *
 * Throws ErofsError EROFS_BAD_NAME, EROFS_BAD_ENTRY as entries are added; duplicate
 * names are found when the tree is written (EROFS_DUPLICATE_NAME).
 */
export class ErofsTree {
  readonly inodes: Inode[] = [];

  constructor(rootMeta: ErofsMeta) {
    checkMeta(rootMeta, '/');
    this.inodes.push({kind: 'dir', meta: rootMeta, nlink: 2, children: [], size: 0, major: 0, minor: 0, slot: -1});
  }

  /** The root directory. */
  get root(): ErofsNode {
    return 0 as ErofsNode;
  }

  mkdir(parent: ErofsNode, name: Buffer | string, meta: ErofsMeta): ErofsNode {
    const dir = this.dirOf(parent);
    const n = this.checkedName(dir, name);
    checkMeta(meta, n.toString());
    dir.nlink++;
    return this.add(dir, n, {kind: 'dir', meta, nlink: 2, children: [], parent: dir, name: n, size: 0, major: 0, minor: 0, slot: -1});
  }

  addFile(parent: ErofsNode, name: Buffer | string, meta: ErofsMeta, content: FileContent): ErofsNode {
    const dir = this.dirOf(parent);
    const n = this.checkedName(dir, name);
    checkMeta(meta, n.toString());
    if ('data' in content) return this.add(dir, n, {kind: 'file', meta, nlink: 1, data: content.data, size: content.data.length, major: 0, minor: 0, slot: -1});
    if (!Number.isSafeInteger(content.size) || content.size < 0) throw new ErofsError('EROFS_BAD_ENTRY', `file ${n} has a bad size ${content.size}`);
    if (content.redirect !== undefined && (!content.redirect.startsWith('/') || content.redirect.includes('\0') || Buffer.byteLength(content.redirect) > 4095))
      throw new ErofsError('EROFS_BAD_ENTRY', `file ${n} has a bad redirect ${JSON.stringify(content.redirect)} (an absolute path is needed)`);
    return this.add(dir, n, {kind: 'file', meta, nlink: 1, size: content.size, redirect: content.redirect, major: 0, minor: 0, slot: -1});
  }

  addSymlink(parent: ErofsNode, name: Buffer | string, meta: ErofsMeta, target: Buffer | string): ErofsNode {
    const dir = this.dirOf(parent);
    const n = this.checkedName(dir, name);
    checkMeta(meta, n.toString());
    const t = encodeName(target);
    // PATH_MAX (4096) counts the terminating NUL.
    if (t.length === 0 || t.length > 4095 || t.includes(0)) throw new ErofsError('EROFS_BAD_ENTRY', `symlink ${n} has a bad target (1 to 4095 bytes, no NUL)`);
    return this.add(dir, n, {kind: 'symlink', meta, nlink: 1, data: t, size: t.length, major: 0, minor: 0, slot: -1});
  }

  addDevice(parent: ErofsNode, name: Buffer | string, kind: 'char' | 'block', meta: ErofsMeta, major: number, minor: number): ErofsNode {
    const dir = this.dirOf(parent);
    const n = this.checkedName(dir, name);
    checkMeta(meta, n.toString());
    // The kernel's 32-bit device encoding holds a 12-bit major and a 20-bit minor.
    if (!Number.isInteger(major) || major < 0 || major >= 1 << 12 || !Number.isInteger(minor) || minor < 0 || minor >= 1 << 20)
      throw new ErofsError('EROFS_BAD_ENTRY', `device ${n} has numbers ${major}:${minor} out of range (major < 4096, minor < 1048576)`);
    return this.add(dir, n, {kind, meta, nlink: 1, size: 0, major, minor, slot: -1});
  }

  addFifo(parent: ErofsNode, name: Buffer | string, meta: ErofsMeta): ErofsNode {
    const dir = this.dirOf(parent);
    const n = this.checkedName(dir, name);
    checkMeta(meta, n.toString());
    return this.add(dir, n, {kind: 'fifo', meta, nlink: 1, size: 0, major: 0, minor: 0, slot: -1});
  }

  /** Another name for an existing non-directory inode (a hardlink: one inode, nlink + 1). */
  link(parent: ErofsNode, name: Buffer | string, target: ErofsNode): void {
    const dir = this.dirOf(parent);
    const n = this.checkedName(dir, name);
    const inode = this.inodes[target];
    if (!inode) throw new TypeError(`assertion failed: no inode ${target}`);
    if (inode.kind === 'dir') throw new ErofsError('EROFS_BAD_ENTRY', `hardlink ${n} names a directory`);
    inode.nlink++;
    dir.children!.push({name: n, inode});
  }

  private add(dir: Inode, name: Buffer, inode: Inode): ErofsNode {
    dir.children!.push({name, inode});
    this.inodes.push(inode);
    return (this.inodes.length - 1) as ErofsNode;
  }

  private dirOf(node: ErofsNode): Inode {
    const dir = this.inodes[node];
    if (!dir || dir.kind !== 'dir') throw new TypeError(`assertion failed: inode ${node} is not a directory`);
    return dir;
  }

  private checkedName(dir: Inode, name: Buffer | string): Buffer {
    const n = encodeName(name);
    const bad = n.length === 0 || n.length > MAX_NAME || n.includes(0x2f) || n.includes(0) || (n.length <= 2 && n.every(b => b === 0x2e));
    if (bad) throw new ErofsError('EROFS_BAD_NAME', `${pathOf(dir)} cannot hold an entry named ${JSON.stringify(n.toString('latin1'))} (1 to ${MAX_NAME} bytes, no "/" or NUL, not "." or "..")`);
    return n;
  }
}

/** The path of a directory inode, for messages. */
export function pathOf(dir: Inode): string {
  const parts: string[] = [];
  for (let d: Inode | undefined = dir; d?.name; d = d.parent) parts.unshift(d.name.toString());
  return `/${parts.join('/')}`;
}

function checkMeta(m: ErofsMeta, what: string): void {
  const u32 = (v: number) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
  if (!Number.isInteger(m.mode) || m.mode < 0 || m.mode > 0o7777) throw new ErofsError('EROFS_BAD_ENTRY', `${what} has mode ${m.mode}; only permission bits (0 to 0o7777) are allowed`);
  if (!u32(m.uid) || !u32(m.gid)) throw new ErofsError('EROFS_BAD_ENTRY', `${what} has an owner out of range (${m.uid}:${m.gid})`);
  if (!Number.isSafeInteger(m.mtime)) throw new ErofsError('EROFS_BAD_ENTRY', `${what} has a bad mtime ${m.mtime}`);
  const ns = m.mtimeNsec ?? 0;
  if (!Number.isInteger(ns) || ns < 0 || ns >= 1e9) throw new ErofsError('EROFS_BAD_ENTRY', `${what} has bad nanoseconds ${ns}`);
}
