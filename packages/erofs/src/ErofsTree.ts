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
 * without, a file of holes. With `dataRef`, the bytes are stored in the image too, but the
 * tree keeps only their size and a number: `writeErofs` asks its `readData` for them when
 * it writes them, so a tree of many files' bytes need not hold them all at once.
 */
export type FileContent = {readonly data: Buffer} | {readonly size: number; readonly redirect?: string} | {readonly size: number; readonly dataRef: number};

/** A handle to an inode of an `ErofsTree` (its index). */
export type ErofsNode = number & {readonly __brand: 'ErofsNode'};

/** Kind codes as the tree keeps them (KINDS[code] is the kind). */
export const KIND = {dir: 0, file: 1, symlink: 2, char: 3, block: 4, fifo: 5} as const;
export const KINDS: readonly ErofsKind[] = ['dir', 'file', 'symlink', 'char', 'block', 'fifo'];

/** Entry flag: a second name of an inode (`link`), not the name it was added under. */
const ENTRY_LINK = 1;

const encodeName = (name: Buffer | string) => (typeof name === 'string' ? Buffer.from(name, 'utf8') : name);

/**
 * The abstract description of a tree that `writeErofs` turns into an image: every name,
 * inode and xattr, kept as columns of typed arrays (one slot per inode and per name, names
 * copied into one byte pool) rather than an object per inode, so a tree of a million files
 * costs tens of bytes a file and no work for the garbage collector; file contents are
 * referenced, not copied. Entries may be added in any order; directories are sorted when
 * written (at no cost when entries come sorted, as a store's trees do). Names are bytes (a
 * string is taken as UTF-8).
 *
 * Throws ErofsError EROFS_BAD_NAME, EROFS_BAD_ENTRY as entries are added; duplicate
 * names are found when the tree is written (EROFS_DUPLICATE_NAME).
 */
export class ErofsTree {
  /** Inodes so far. */
  count = 0;
  private cap = 0;
  // Per inode.
  kind = new Uint8Array(0);
  mode = new Uint16Array(0);
  uid = new Uint32Array(0);
  gid = new Uint32Array(0);
  mtime = new Float64Array(0);
  mtimeNsec = new Uint32Array(0);
  nlink = new Uint32Array(0);
  /** A file's size (data.length when it has data), a symlink's target length. */
  size = new Float64Array(0);
  /** Directories: the parent directory (the root's is itself), and the entry they were added under (-1 for the root). */
  parent = new Int32Array(0);
  nameEntry = new Int32Array(0);
  /** Directories: their entries, a list through `entryNext` (-1 ends it), in the order added. */
  firstEntry = new Int32Array(0);
  lastEntry = new Int32Array(0);
  entryCount = new Uint32Array(0);
  /** File bytes stored in the image, or a symlink's target (sparse). */
  readonly data: (Buffer | undefined)[] = [];
  /** File bytes stored in the image that the writer reads when it writes them (`readData`), by this number (sparse). */
  readonly dataRef: (number | undefined)[] = [];
  /** A file's redirect (sparse). */
  readonly redirect: (string | undefined)[] = [];
  /** Inodes with xattrs of their own. */
  readonly xattrs = new Map<number, Readonly<Record<string, Buffer>>>();
  /** Devices: (major, minor). */
  readonly devices = new Map<number, readonly [number, number]>();

  /** Entries so far (names: an inode of a directory). */
  entries = 0;
  private entryCap = 0;
  entryInode = new Int32Array(0);
  entryNext = new Int32Array(0);
  entryNameAt = new Uint32Array(0);
  entryNameLen = new Uint8Array(0);
  entryFlags = new Uint8Array(0);
  /** Every name's bytes, one after the other. */
  names = Buffer.alloc(0);
  namesUsed = 0;

  constructor(rootMeta: ErofsMeta) {
    checkMeta(rootMeta, '/');
    const root = this.addInode(KIND.dir, rootMeta, 0);
    this.parent[root] = root;
    this.nlink[root] = 2;
  }

  /** The root directory. */
  get root(): ErofsNode {
    return 0 as ErofsNode;
  }

  mkdir(parent: ErofsNode, name: Buffer | string, meta: ErofsMeta): ErofsNode {
    this.dirOf(parent);
    const n = this.checkedName(parent, name);
    checkMeta(meta, n);
    this.nlink[parent] = this.nlink[parent]! + 1;
    const dir = this.addInode(KIND.dir, meta, 0);
    this.nlink[dir] = 2;
    this.parent[dir] = parent;
    this.nameEntry[dir] = this.addEntry(parent, n, dir, 0);
    return dir;
  }

  addFile(parent: ErofsNode, name: Buffer | string, meta: ErofsMeta, content: FileContent): ErofsNode {
    this.dirOf(parent);
    const n = this.checkedName(parent, name);
    checkMeta(meta, n);
    if ('data' in content) {
      const node = this.addInode(KIND.file, meta, content.data.length);
      this.data[node] = content.data;
      this.addEntry(parent, n, node, 0);
      return node;
    }
    if (!Number.isSafeInteger(content.size) || content.size < 0) throw new ErofsError('EROFS_BAD_ENTRY', `file ${n} has a bad size ${content.size}`);
    if ('dataRef' in content) {
      const node = this.addInode(KIND.file, meta, content.size);
      this.dataRef[node] = content.dataRef;
      this.addEntry(parent, n, node, 0);
      return node;
    }
    if (content.redirect !== undefined && (!content.redirect.startsWith('/') || content.redirect.includes('\0') || Buffer.byteLength(content.redirect) > 4095))
      throw new ErofsError('EROFS_BAD_ENTRY', `file ${n} has a bad redirect ${JSON.stringify(content.redirect)} (an absolute path is needed)`);
    const node = this.addInode(KIND.file, meta, content.size);
    if (content.redirect !== undefined) this.redirect[node] = content.redirect;
    this.addEntry(parent, n, node, 0);
    return node;
  }

  addSymlink(parent: ErofsNode, name: Buffer | string, meta: ErofsMeta, target: Buffer | string): ErofsNode {
    this.dirOf(parent);
    const n = this.checkedName(parent, name);
    checkMeta(meta, n);
    const t = encodeName(target);
    // PATH_MAX (4096) counts the terminating NUL.
    if (t.length === 0 || t.length > 4095 || t.includes(0)) throw new ErofsError('EROFS_BAD_ENTRY', `symlink ${n} has a bad target (1 to 4095 bytes, no NUL)`);
    const node = this.addInode(KIND.symlink, meta, t.length);
    this.data[node] = t;
    this.addEntry(parent, n, node, 0);
    return node;
  }

  addDevice(parent: ErofsNode, name: Buffer | string, kind: 'char' | 'block', meta: ErofsMeta, major: number, minor: number): ErofsNode {
    this.dirOf(parent);
    const n = this.checkedName(parent, name);
    checkMeta(meta, n);
    // The kernel's 32-bit device encoding holds a 12-bit major and a 20-bit minor.
    if (!Number.isInteger(major) || major < 0 || major >= 1 << 12 || !Number.isInteger(minor) || minor < 0 || minor >= 1 << 20)
      throw new ErofsError('EROFS_BAD_ENTRY', `device ${n} has numbers ${major}:${minor} out of range (major < 4096, minor < 1048576)`);
    const node = this.addInode(KIND[kind], meta, 0);
    this.devices.set(node, [major, minor]);
    this.addEntry(parent, n, node, 0);
    return node;
  }

  addFifo(parent: ErofsNode, name: Buffer | string, meta: ErofsMeta): ErofsNode {
    this.dirOf(parent);
    const n = this.checkedName(parent, name);
    checkMeta(meta, n);
    const node = this.addInode(KIND.fifo, meta, 0);
    this.addEntry(parent, n, node, 0);
    return node;
  }

  /** Another name for an existing non-directory inode (a hardlink: one inode, nlink + 1). */
  link(parent: ErofsNode, name: Buffer | string, target: ErofsNode): void {
    this.dirOf(parent);
    const n = this.checkedName(parent, name);
    if (!(target >= 0 && target < this.count)) throw new TypeError(`assertion failed: no inode ${target}`);
    if (this.kind[target] === KIND.dir) throw new ErofsError('EROFS_BAD_ENTRY', `hardlink ${n} names a directory`);
    this.nlink[target] = this.nlink[target]! + 1;
    this.addEntry(parent, n, target, ENTRY_LINK);
  }

  /**
   * The inode added under `name` in `dir` (a name given by `link` does not count: it is the
   * second name of an inode, not where it was added); undefined when there is none. A scan of
   * the directory's names: for the odd lookup (a hardlink's target), not for every entry.
   */
  lookup(dir: ErofsNode, name: Buffer): ErofsNode | undefined {
    if (this.kind[dir] !== KIND.dir) return undefined;
    for (let e = this.firstEntry[dir]!; e >= 0; e = this.entryNext[e]!) {
      if ((this.entryFlags[e]! & ENTRY_LINK) === 0 && this.entryNameLen[e] === name.length && this.names.compare(name, 0, name.length, this.entryNameAt[e]!, this.entryNameAt[e]! + name.length) === 0)
        return this.entryInode[e] as ErofsNode;
    }
    return undefined;
  }

  /** What a file inode holds: its bytes, or its size and redirect. */
  contentOf(node: ErofsNode): FileContent {
    const data = this.data[node];
    if (data) return {data};
    const dataRef = this.dataRef[node];
    return dataRef !== undefined ? {size: this.size[node]!, dataRef} : {size: this.size[node]!, redirect: this.redirect[node]};
  }

  kindOf(node: ErofsNode): ErofsKind {
    return KINDS[this.kind[node]!]!;
  }

  /** The name bytes of entry `e` (a view of the pool). */
  entryName(e: number): Buffer {
    return this.names.subarray(this.entryNameAt[e]!, this.entryNameAt[e]! + this.entryNameLen[e]!);
  }

  /** The path of a directory inode, for messages. */
  pathOf(dir: number): string {
    const parts: string[] = [];
    for (let d = dir; this.nameEntry[d]! >= 0; d = this.parent[d]!) parts.unshift(this.entryName(this.nameEntry[d]!).toString());
    return `/${parts.join('/')}`;
  }

  private addInode(kind: number, meta: ErofsMeta, size: number): ErofsNode {
    if (this.count === this.cap) this.growInodes();
    const i = this.count++;
    this.kind[i] = kind;
    this.mode[i] = meta.mode;
    this.uid[i] = meta.uid;
    this.gid[i] = meta.gid;
    this.mtime[i] = meta.mtime;
    this.mtimeNsec[i] = meta.mtimeNsec ?? 0;
    this.nlink[i] = 1;
    this.size[i] = size;
    this.parent[i] = -1;
    this.nameEntry[i] = -1;
    this.firstEntry[i] = -1;
    this.lastEntry[i] = -1;
    if (meta.xattrs) this.xattrs.set(i, meta.xattrs);
    return i as ErofsNode;
  }

  private addEntry(dir: number, name: Buffer, inode: number, flags: number): number {
    if (this.entries === this.entryCap) this.growEntries();
    if (this.namesUsed + name.length > this.names.length) {
      const grown = Buffer.alloc(Math.max(2 * this.names.length, this.namesUsed + name.length, 4096));
      this.names.copy(grown, 0, 0, this.namesUsed);
      this.names = grown;
    }
    const e = this.entries++;
    this.entryInode[e] = inode;
    this.entryNext[e] = -1;
    this.entryNameAt[e] = this.namesUsed;
    this.entryNameLen[e] = name.length;
    this.entryFlags[e] = flags;
    this.names.set(name, this.namesUsed);
    this.namesUsed += name.length;
    if (this.lastEntry[dir]! < 0) this.firstEntry[dir] = e;
    else this.entryNext[this.lastEntry[dir]!] = e;
    this.lastEntry[dir] = e;
    this.entryCount[dir] = this.entryCount[dir]! + 1;
    return e;
  }

  private growInodes(): void {
    const cap = Math.max(64, this.cap * 2);
    this.kind = grow(this.kind, cap);
    this.mode = grow(this.mode, cap);
    this.uid = grow(this.uid, cap);
    this.gid = grow(this.gid, cap);
    this.mtime = grow(this.mtime, cap);
    this.mtimeNsec = grow(this.mtimeNsec, cap);
    this.nlink = grow(this.nlink, cap);
    this.size = grow(this.size, cap);
    this.parent = grow(this.parent, cap);
    this.nameEntry = grow(this.nameEntry, cap);
    this.firstEntry = grow(this.firstEntry, cap);
    this.lastEntry = grow(this.lastEntry, cap);
    this.entryCount = grow(this.entryCount, cap);
    this.cap = cap;
  }

  private growEntries(): void {
    const cap = Math.max(64, this.entryCap * 2);
    this.entryInode = grow(this.entryInode, cap);
    this.entryNext = grow(this.entryNext, cap);
    this.entryNameAt = grow(this.entryNameAt, cap);
    this.entryNameLen = grow(this.entryNameLen, cap);
    this.entryFlags = grow(this.entryFlags, cap);
    this.entryCap = cap;
  }

  private dirOf(node: ErofsNode): void {
    if (!(node >= 0 && node < this.count) || this.kind[node] !== KIND.dir) throw new TypeError(`assertion failed: inode ${node} is not a directory`);
  }

  private checkedName(dir: number, name: Buffer | string): Buffer {
    const n = encodeName(name);
    const bad = n.length === 0 || n.length > MAX_NAME || n.includes(0x2f) || n.includes(0) || (n.length <= 2 && n.every(b => b === 0x2e));
    if (bad) throw new ErofsError('EROFS_BAD_NAME', `${this.pathOf(dir)} cannot hold an entry named ${JSON.stringify(n.toString('latin1'))} (1 to ${MAX_NAME} bytes, no "/" or NUL, not "." or "..")`);
    return n;
  }
}

type Typed = Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array;
function grow<T extends Typed>(a: T, cap: number): T {
  const b = new (a.constructor as new (n: number) => T)(cap);
  b.set(a);
  return b;
}

/** `what` names the entry in a message (a name's bytes are made a string only then: this runs for every entry). */
function checkMeta(m: ErofsMeta, what: Buffer | string): void {
  const u32 = (v: number) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
  if (!Number.isInteger(m.mode) || m.mode < 0 || m.mode > 0o7777) throw new ErofsError('EROFS_BAD_ENTRY', `${what} has mode ${m.mode}; only permission bits (0 to 0o7777) are allowed`);
  if (!u32(m.uid) || !u32(m.gid)) throw new ErofsError('EROFS_BAD_ENTRY', `${what} has an owner out of range (${m.uid}:${m.gid})`);
  if (!Number.isSafeInteger(m.mtime)) throw new ErofsError('EROFS_BAD_ENTRY', `${what} has a bad mtime ${m.mtime}`);
  const ns = m.mtimeNsec ?? 0;
  if (!Number.isInteger(ns) || ns < 0 || ns >= 1e9) throw new ErofsError('EROFS_BAD_ENTRY', `${what} has bad nanoseconds ${ns}`);
}
