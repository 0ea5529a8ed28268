import {type Digest, digestFromBytes, hashBytes} from './digest.js';
import {StoreError} from '../errors.js';
import {isCanonicalName, nameFromBytes, nameToBytes} from './names.js';

/** What a name in a directory is. `whiteout` hides the name in the layers below. */
export type EntryKind = 'file' | 'dir' | 'symlink' | 'hardlink' | 'whiteout' | 'char' | 'block' | 'fifo';

/** Extended attributes, name -> value, as tar's SCHILY.xattr records carry them. */
export type Xattrs = Readonly<Record<string, Buffer>>;

/** Owner, permissions and time: what every entry but a whiteout carries. */
export interface Meta {
  /** Permission bits only (0o7777); the kind says the type. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Seconds since the epoch: tar's granularity, so a tar and a directory agree. */
  readonly mtime: number;
  readonly xattrs?: Xattrs;
}

/**
 * One name in a tree. A `dir` entry holds only the child tree's digest: the directory's
 * own metadata and its opaque flag live in that tree, so the root has them too.
 * A `hardlink` names another path of the same layer (`target`, absolute) and repeats
 * that file's blob and size, so reading it never needs the target.
 */
export type TreeEntry =
  | {readonly name: string; readonly kind: 'dir'; readonly tree: Digest}
  | {readonly name: string; readonly kind: 'whiteout'}
  | (Meta & {readonly name: string; readonly kind: 'file'; readonly size: number; readonly blob: Digest})
  | (Meta & {readonly name: string; readonly kind: 'hardlink'; readonly size: number; readonly blob: Digest; readonly target: string})
  | (Meta & {readonly name: string; readonly kind: 'symlink'; readonly target: string})
  | (Meta & {readonly name: string; readonly kind: 'char' | 'block'; readonly devmajor: number; readonly devminor: number})
  | (Meta & {readonly name: string; readonly kind: 'fifo'});

/**
 * One directory: its own metadata, whether it hides the layers below, and its entries
 * sorted by name. `implicit`: the layer holds this directory only because a deeper path
 * needs it (a tar without an entry for it): its metadata is `IMPLICIT_DIR_META` and a
 * lower layer's directory keeps its own when the layers are merged.
 */
export interface Tree extends Meta {
  readonly opaque: boolean;
  readonly implicit?: boolean;
  readonly entries: readonly TreeEntry[];
}

/** The metadata of an implicit directory, as tar extractors create missing parents. */
export const IMPLICIT_DIR_META: Meta = {mode: 0o755, uid: 0, gid: 0, mtime: 0};
const FLAG_OPAQUE = 1, FLAG_IMPLICIT = 2;

const MAGIC = Buffer.from('STRT', 'latin1');
const VERSION = 1;
const KIND_CODES: Record<EntryKind, number> = {file: 1, dir: 2, symlink: 3, hardlink: 4, whiteout: 5, char: 6, block: 7, fifo: 8};
const KINDS = Object.fromEntries(Object.entries(KIND_CODES).map(([k, v]) => [v, k])) as Record<number, EntryKind>;
const ZERO_DIGEST = Buffer.alloc(32);

/**
 * Checks that a name can be one path component: not empty, `.` or `..`, no `/` or NUL,
 * and a string `nameFromBytes` gives (objects/names.ts: bytes that are not UTF-8 are escaped).
 */
export function isValidName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0') && isCanonicalName(name);
}

/**
 * Orders names by their bytes (objects/names.ts). UTF-16 code units sort as UTF-8 bytes
 * below the surrogates (U+D800), which covers nearly every name, so only the rest pay
 * for encoding.
 */
export function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i), cb = b.charCodeAt(i);
    if (ca === cb) continue;
    if (ca < 0xd800 && cb < 0xd800) return ca - cb;
    // Start at a whole character: the first half of a surrogate pair may be the same in both.
    const at = i > 0 && a.charCodeAt(i - 1) >= 0xd800 && a.charCodeAt(i - 1) <= 0xdbff ? i - 1 : i;
    return Buffer.compare(nameToBytes(a.slice(at)), nameToBytes(b.slice(at)));
  }
  return a.length - b.length;
}

/** Sorts entries into the canonical order (by the UTF-8 bytes of their names). */
export function sortEntries<E extends {readonly name: string}>(entries: E[]): E[] {
  return entries.sort((a, b) => compareNames(a.name, b.name));
}

/**
 * Writes an encoding into one buffer that grows as needed (a buffer per field, two BigInts
 * per entry and a concat at the end cost more than the rest of encoding a tree: decodeTree
 * encodes every tree it reads again, to check its form, and an import encodes every
 * directory on its main thread).
 */
class Writer {
  private buf: Buffer;
  private at = 0;
  constructor(size: number) { this.buf = Buffer.allocUnsafe(size); }
  private room(n: number) {
    if (this.at + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.at + n));
    this.buf.copy(grown, 0, 0, this.at);
    this.buf = grown;
  }
  u8(n: number) { this.room(1); this.at = this.buf.writeUInt8(n, this.at); }
  u16(n: number) { this.room(2); this.at = this.buf.writeUInt16BE(n, this.at); }
  u32(n: number) { this.room(4); this.at = this.buf.writeUInt32BE(n >>> 0, this.at); }
  i64(n: number) {
    this.room(8);
    if (!Number.isSafeInteger(n)) { this.at = this.buf.writeBigInt64BE(BigInt(n), this.at); return; } // throws for a fraction, as before
    const high = Math.floor(n / 0x100000000); // two's complement: the low word is what is left, 0 … 2^32-1
    this.buf.writeInt32BE(high, this.at);
    this.at = this.buf.writeUInt32BE(n - high * 0x100000000, this.at + 4);
  }
  bytes(b: Uint8Array) { this.room(b.length); this.buf.set(b, this.at); this.at += b.length; }
  get offset(): number { return this.at; }
  /** A digest's 32 bytes, written from its hex without a Buffer of its own. */
  digest(d: Digest) {
    this.room(32);
    if (this.buf.write(d.slice(3), this.at, 32, 'hex') !== 32) throw new TypeError(`assertion failed: ${JSON.stringify(d)} is not a digest`);
    this.at += 32;
  }
  str16(s: string) { const b = nameToBytes(s); this.u16(b.length); this.bytes(b); }
  str32(s: string) {
    if (s === '') return this.u32(0); // most entries: no link target
    const b = nameToBytes(s); this.u32(b.length); this.bytes(b);
  }
  meta(m: Partial<Meta>) {
    this.u32(m.mode ?? 0); this.u32(m.uid ?? 0); this.u32(m.gid ?? 0); this.i64(m.mtime ?? 0);
    const names = m.xattrs ? Object.keys(m.xattrs).sort(compareNames) : [];
    this.u16(names.length);
    for (const n of names) {
      const v = m.xattrs![n]!;
      this.str16(n); this.u32(v.length); this.bytes(v);
    }
  }
  /** The bytes written, in a buffer of their own (no slack kept alive by the index's pending batch or a cache). */
  done(): Buffer { return Buffer.from(this.buf.subarray(0, this.at)); }
  doneOwn(): Buffer { const b = Buffer.allocUnsafeSlow(this.at); this.buf.copy(b, 0, 0, this.at); return b; }
}

class Reader {
  private at = 0;
  constructor(private readonly buf: Buffer, private readonly what: string) {}
  private need(n: number) {
    if (this.at + n > this.buf.length) throw new StoreError('OBJECT_CORRUPT', `${this.what} is truncated`);
  }
  u8() { this.need(1); return this.buf.readUInt8(this.at++); }
  u16() { this.need(2); const v = this.buf.readUInt16BE(this.at); this.at += 2; return v; }
  u32() { this.need(4); const v = this.buf.readUInt32BE(this.at); this.at += 4; return v; }
  i64() { this.need(8); const v = Number(this.buf.readBigInt64BE(this.at)); this.at += 8; return v; }
  bytes(n: number) { this.need(n); const v = this.buf.subarray(this.at, this.at + n); this.at += n; return v; }
  str16() { return nameFromBytes(this.bytes(this.u16())); }
  str32() { return nameFromBytes(this.bytes(this.u32())); }
  meta(): Meta {
    const mode = this.u32(), uid = this.u32(), gid = this.u32(), mtime = this.i64();
    const count = this.u16();
    if (count === 0) return {mode, uid, gid, mtime};
    const xattrs: Record<string, Buffer> = {};
    for (let i = 0; i < count; i++) {
      const name = this.str16();
      xattrs[name] = Buffer.from(this.bytes(this.u32()));
    }
    return {mode, uid, gid, mtime, xattrs};
  }
  end() {
    if (this.at !== this.buf.length) throw new StoreError('OBJECT_CORRUPT', `${this.what} has trailing bytes`);
  }
}

/**
 * The canonical bytes of a tree (docs/format.md, "Tree"). Entries must already be
 * sorted and unique; a tree that breaks that is a programming error.
 */
export function encodeTree(tree: Tree): Buffer {
  // About what an entry with a short name takes (format.md, "Tree"): most trees need no growing.
  const w = new Writer(64 + 96 * tree.entries.length);
  writeHead(w, tree, tree.entries.length);
  let prev: string | undefined;
  for (const e of tree.entries) {
    if (prev !== undefined && compareNames(prev, e.name) >= 0)
      throw new TypeError(`assertion failed: entries not sorted and unique at ${JSON.stringify(e.name)}`);
    prev = e.name;
    writeEntry(w, e);
  }
  return w.done();
}

/**
 * A tree's encoding in two parts, for a caller that encodes its entries elsewhere (a
 * directory import's hashing threads: `TreeEntries`): the head (magic, flags, the
 * directory's own metadata, the number of entries), to which the entries' bytes are
 * appended in order. `encodeTreeHead(t, n)` + the n entries' bytes = `encodeTree(t)`.
 */
export function encodeTreeHead(tree: Omit<Tree, 'entries'>, count: number): Buffer {
  const w = new Writer(64);
  writeHead(w, tree, count);
  return w.done();
}

/**
 * Entries of one tree encoded one after another (in the tree's order: the caller sorts),
 * each as `encodeTree` writes it. `add` returns where the entry's 32-byte reference (a
 * file's blob, a directory's tree) lies in `done()`'s bytes, so a reference not known yet
 * can be written there later (`ZERO_DIGEST` stands in).
 */
export class TreeEntries {
  private readonly w: Writer;
  constructor(count: number) { this.w = new Writer(16 + 96 * count); }
  add(e: TreeEntry): number { return writeEntry(this.w, e); }
  /** Bytes written so far: where the next entry starts. */
  get offset(): number { return this.w.offset; }
  /** The bytes, in an ArrayBuffer of their own (not Node's shared pool), so they can be moved to another thread. */
  done(): Buffer { return this.w.doneOwn(); }
}

/** A digest of 32 zero bytes: the reference of a `TreeEntries` entry written before it is known. */
export const PLACEHOLDER_DIGEST = `b3:${'0'.repeat(64)}` as Digest;

function writeHead(w: Writer, tree: Omit<Tree, 'entries'>, count: number): void {
  if (tree.implicit && !isImplicitMeta(tree)) throw new TypeError('assertion failed: an implicit directory has metadata of its own');
  w.bytes(MAGIC); w.u8(VERSION); w.u8((tree.opaque ? FLAG_OPAQUE : 0) | (tree.implicit ? FLAG_IMPLICIT : 0));
  w.meta(tree);
  w.u32(count);
}

/** Writes one entry; returns the offset of its reference field. */
function writeEntry(w: Writer, e: TreeEntry): number {
  if (!isValidName(e.name)) throw new TypeError(`assertion failed: bad entry name ${JSON.stringify(e.name)}`);
  w.str16(e.name);
  w.u8(KIND_CODES[e.kind]);
  w.meta(e.kind === 'dir' || e.kind === 'whiteout' ? {} : e);
  w.i64(e.kind === 'file' || e.kind === 'hardlink' ? e.size : 0);
  const ref = w.offset;
  if (e.kind === 'file' || e.kind === 'hardlink') w.digest(e.blob);
  else if (e.kind === 'dir') w.digest(e.tree);
  else w.bytes(ZERO_DIGEST);
  w.str32(e.kind === 'symlink' || e.kind === 'hardlink' ? e.target : '');
  w.u32(e.kind === 'char' || e.kind === 'block' ? e.devmajor : 0);
  w.u32(e.kind === 'char' || e.kind === 'block' ? e.devminor : 0);
  return ref;
}

/** Parses canonical tree bytes; `what` names the object in errors. Throws OBJECT_CORRUPT. */
export function decodeTree(buf: Buffer, what = 'tree'): Tree {
  const r = new Reader(buf, what);
  if (!r.bytes(4).equals(MAGIC) || r.u8() !== VERSION) throw new StoreError('OBJECT_CORRUPT', `${what} is not a strata tree`);
  const flags = r.u8();
  const opaque = (flags & FLAG_OPAQUE) !== 0, implicit = (flags & FLAG_IMPLICIT) !== 0;
  const meta = r.meta();
  if (implicit && !isImplicitMeta(meta)) throw new StoreError('OBJECT_CORRUPT', `${what} is implicit but has metadata of its own`);
  const count = r.u32();
  const entries: TreeEntry[] = [];
  for (let i = 0; i < count; i++) {
    const name = r.str16();
    const kind = KINDS[r.u8()];
    if (!kind) throw new StoreError('OBJECT_CORRUPT', `${what} has an entry of unknown kind`);
    const m = r.meta();
    const size = r.i64();
    const ref = r.bytes(32);
    const target = r.str32();
    const devmajor = r.u32(), devminor = r.u32();
    switch (kind) {
      case 'dir': entries.push({name, kind, tree: digestFromBytes(ref)}); break;
      case 'whiteout': entries.push({name, kind}); break;
      // Written out rather than spread ({...m, …} took most of the decode: V8's slow path), same key order.
      case 'file': entries.push(m.xattrs
        ? {mode: m.mode, uid: m.uid, gid: m.gid, mtime: m.mtime, xattrs: m.xattrs, name, kind, size, blob: digestFromBytes(ref)}
        : {mode: m.mode, uid: m.uid, gid: m.gid, mtime: m.mtime, name, kind, size, blob: digestFromBytes(ref)}); break;
      case 'hardlink': entries.push({...m, name, kind, size, blob: digestFromBytes(ref), target}); break;
      case 'symlink': entries.push({...m, name, kind, target}); break;
      case 'char': case 'block': entries.push({...m, name, kind, devmajor, devminor}); break;
      case 'fifo': entries.push({...m, name, kind}); break;
    }
  }
  r.end();
  const tree: Tree = {...meta, opaque, ...(implicit ? {implicit} : {}), entries};
  // One tree, one encoding: bytes that decode but re-encode differently (unsorted names,
  // stray flag bits, non-zero unused fields) would let two digests name one tree.
  let again: Buffer | undefined;
  try {
    again = encodeTree(tree);
  } catch {
    // an invalid or unsorted name: reported below
  }
  if (!again?.equals(buf)) throw new StoreError('OBJECT_CORRUPT', `${what} is not in canonical form`);
  return tree;
}

/**
 * The directory's own metadata from canonical tree bytes (its head), without its entries:
 * for a caller that needs only that of a wide directory (a container's root). Throws
 * OBJECT_CORRUPT for bytes that are not a tree.
 */
export function decodeTreeMeta(buf: Buffer, what = 'tree'): Meta {
  const r = new Reader(buf, what);
  if (!r.bytes(4).equals(MAGIC) || r.u8() !== VERSION) throw new StoreError('OBJECT_CORRUPT', `${what} is not a strata tree`);
  r.u8(); // flags
  return r.meta();
}

/** Byte sizes of the encoding's fixed fields (docs/format.md, "Tree"), for `forEachTreeRef`. */
const META_FIXED = 4 + 4 + 4 + 8; // mode, uid, gid, mtime
const DIGEST_BYTES = 32;

/**
 * Calls `each` with what every entry of an encoded tree references (a child tree or a
 * file's blob, hardlinks included, as `blob`) and returns its regular files' bytes, walking the
 * canonical encoding without building entry objects: gc reads every tree of the store,
 * and this is several times faster than `decodeTree`. Bytes it cannot walk go through
 * `decodeTree`, which says what is wrong (OBJECT_CORRUPT). It checks the layout, not the
 * canonical form (verify does that with `decodeTree`); the gc tests compare both readings.
 */
export function forEachTreeRef(buf: Buffer, what: string, each: (kind: 'tree' | 'blob', digest: Digest) => void): number {
  // The whole encoding in hex, made at the first digest: one native call per tree, and a
  // slice per entry, costs a fraction of a toString per entry.
  let hex: string | undefined;
  return forEachTreeRefAt(buf, what, (kind, at) => {
    each(kind === 'tree' ? 'tree' : 'blob', `b3:${(hex ??= buf.toString('hex')).slice(2 * at, 2 * (at + DIGEST_BYTES))}` as Digest);
  });
}

/**
 * `forEachTreeRef` with each reference as the offset of its 32 digest bytes in `buf`, and
 * the entry's size: gc's mark puts a blob's digest into its set straight from the encoding,
 * with no hex string, and its sweep learns garbage blobs' sizes from garbage trees.
 */
export function forEachTreeRefAt(buf: Buffer, what: string, each: (kind: 'tree' | 'blob' | 'hardlink', at: number, size: number) => void): number {
  const refs = treeRefsAt(buf, what, []);
  for (let i = 0; i < refs.count; i += 3) each(REF_KINDS[refs.out[i]!]!, refs.out[i + 1]!, refs.out[i + 2]!);
  return refs.fileBytes;
}

const REF_KINDS: ('tree' | 'blob' | 'hardlink')[] = [];
REF_KINDS[KIND_CODES.dir] = 'tree';
REF_KINDS[KIND_CODES.file] = 'blob';
REF_KINDS[KIND_CODES.hardlink] = 'hardlink';

/** Kind codes of `treeRefsAt`'s triples. */
export const REF_TREE = KIND_CODES.dir, REF_BLOB = KIND_CODES.file, REF_HARDLINK = KIND_CODES.hardlink;

/**
 * What an encoded tree references, as triples in `out` from 0 (kind code: REF_TREE,
 * REF_BLOB or REF_HARDLINK; the offset of its 32 digest bytes in `buf`; the entry's size):
 * `count` numbers of `out` are set, and nothing is, usable, until the whole encoding was
 * walked. One loop with the fields read in place, no call per entry or field: a short
 * process runs this mostly unoptimised, and gc walks every live tree and every garbage one
 * (the callbacks of `forEachTreeRefAt` cost ~40% more, docs/benchmarks.md "gc, fourth round").
 * Bytes it cannot walk go through `decodeTree`, which says what is wrong (OBJECT_CORRUPT).
 */
export function treeRefsAt(buf: Buffer, what: string, out: number[]): {out: number[]; count: number; fileBytes: number} {
  const n = buf.length;
  let k = 0;
  let fileBytes = 0;
  let ok = n >= MAGIC.length + 2 && buf[0] === MAGIC[0] && buf[1] === MAGIC[1] && buf[2] === MAGIC[2] && buf[3] === MAGIC[3] && buf[4] === VERSION;
  if (ok) {
    let at = MAGIC.length + 2 + META_FIXED; // magic, version, flags, the root's fixed metadata
    // Every read checks its bytes are there first (`at + w > n` is false for NaN too, so `at` stays a number).
    let xattrs = at + 2 <= n ? (buf[at]! << 8) | buf[at + 1]! : -1;
    at += 2;
    for (; xattrs > 0 && at + 2 <= n; xattrs--) {
      at += 2 + ((buf[at]! << 8) | buf[at + 1]!);
      if (at + 4 > n) break;
      at += 4 + (buf[at]! * 0x1000000 + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!));
    }
    ok = xattrs === 0 && at + 4 <= n;
    const count = ok ? buf[at]! * 0x1000000 + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) : 0;
    at += 4;
    for (let i = 0; ok && i < count; i++) {
      if (at + 2 > n) { ok = false; break; }
      at += 2 + ((buf[at]! << 8) | buf[at + 1]!); // name
      if (at + 1 + META_FIXED + 2 > n) { ok = false; break; }
      const kind = buf[at]!;
      at += 1 + META_FIXED;
      xattrs = (buf[at]! << 8) | buf[at + 1]!;
      at += 2;
      for (; xattrs > 0 && at + 2 <= n; xattrs--) {
        at += 2 + ((buf[at]! << 8) | buf[at + 1]!);
        if (at + 4 > n) break;
        at += 4 + (buf[at]! * 0x1000000 + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!));
      }
      // size (int64, exact below 2^53: a signed high word, an unsigned low one), digest, target length
      if (xattrs !== 0 || at + 8 + DIGEST_BYTES + 4 > n) { ok = false; break; }
      const size = ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) * 0x100000000
        + (buf[at + 4]! * 0x1000000 + ((buf[at + 5]! << 16) | (buf[at + 6]! << 8) | buf[at + 7]!));
      at += 8;
      if (kind === KIND_CODES.dir || kind === KIND_CODES.file || kind === KIND_CODES.hardlink) {
        out[k] = kind;
        out[k + 1] = at;
        out[k + 2] = size;
        k += 3;
        if (kind === KIND_CODES.file) fileBytes += size;
      }
      at += DIGEST_BYTES;
      at += 4 + (buf[at]! * 0x1000000 + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!)) + 4 + 4; // target, devmajor, devminor
    }
    ok = ok && at === n;
  }
  if (!ok) {
    decodeTree(buf, what); // throws OBJECT_CORRUPT with the reason
    throw new StoreError('OBJECT_CORRUPT', `${what} cannot be read`);
  }
  return {out, count: k, fileBytes};
}

export function hashTree(tree: Tree): {digest: Digest; bytes: Buffer} {
  const bytes = encodeTree(tree);
  return {digest: hashBytes(bytes), bytes};
}

/** Finds a name in a sorted tree by binary search. */
export function findEntry(tree: Tree, name: string): TreeEntry | undefined {
  const entries = tree.entries;
  let lo = 0, hi = entries.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const e = entries[mid]!;
    const c = compareNames(e.name, name);
    if (c === 0) return e;
    if (c < 0) lo = mid + 1; else hi = mid - 1;
  }
  return undefined;
}

function isImplicitMeta(m: Meta): boolean {
  return m.mode === IMPLICIT_DIR_META.mode && m.uid === 0 && m.gid === 0 && m.mtime === 0 && Object.keys(m.xattrs ?? {}).length === 0;
}

/** The tree of an empty directory with the given metadata. */
export function emptyTree(meta: Meta = {mode: 0o755, uid: 0, gid: 0, mtime: 0}, opaque = false): Tree {
  return {...meta, opaque, entries: []};
}
