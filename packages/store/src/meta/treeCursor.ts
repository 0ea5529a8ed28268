import {StoreError} from '../errors.js';
import {decodeTree} from '../objects/tree.js';
import {nameFromBytes} from '../objects/names.js';
import type {Xattrs} from '../objects/tree.js';

/** Kind codes of the tree encoding (docs/format.md, "Tree"). */
export const KIND_FILE = 1, KIND_DIR = 2, KIND_SYMLINK = 3, KIND_HARDLINK = 4, KIND_WHITEOUT = 5, KIND_CHAR = 6, KIND_BLOCK = 7, KIND_FIFO = 8;

const MAGIC = Buffer.from('STRT', 'latin1');
const VERSION = 1;
const FLAG_IMPLICIT = 2;
const TWO32 = 0x1_0000_0000;

/**
 * Reads a tree's canonical encoding (docs/format.md, "Tree") an entry at a time, without
 * an object per entry: `next()` moves the fields below to the next entry (names, targets
 * and digests as offsets into `bytes`). A metadata image's build reads every tree of an
 * image this way; `decodeTree` made an object per entry and encoded the tree again to
 * check its form, which was a fifth of a build. The same rules are checked here, on the
 * bytes: names valid, sorted and unique, unused fields zero, known kinds and flags, no
 * trailing bytes, integers that decode exactly; bytes that break one go to `decodeTree`
 * for its message (OBJECT_CORRUPT). The caller has checked the bytes against the digest.
 */
export class TreeCursor {
  private at = 0;
  private left: number;
  private prevAt = -1;
  private prevLen = 0;
  // The directory's own metadata.
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: number;
  readonly xattrs: Xattrs | undefined;
  // The current entry.
  kind = 0;
  nameAt = 0;
  nameLen = 0;
  eMode = 0;
  eUid = 0;
  eGid = 0;
  eMtime = 0;
  eXattrs: Xattrs | undefined;
  size = 0;
  /** Offset of the 32-byte digest (blob or child tree). */
  refAt = 0;
  targetAt = 0;
  targetLen = 0;
  devmajor = 0;
  devminor = 0;

  constructor(readonly bytes: Buffer, private readonly what: string) {
    const b = bytes;
    if (b.length < 6 || b.compare(MAGIC, 0, 4, 0, 4) !== 0 || b[4] !== VERSION) this.corrupt();
    const flags = b[5]!;
    if (flags > 3) this.corrupt();
    this.at = 6;
    this.readMeta();
    this.mode = this.eMode;
    this.uid = this.eUid;
    this.gid = this.eGid;
    this.mtime = this.eMtime;
    this.xattrs = this.eXattrs;
    if ((flags & FLAG_IMPLICIT) !== 0 && (this.mode !== 0o755 || this.uid !== 0 || this.gid !== 0 || this.mtime !== 0 || this.xattrs)) this.corrupt();
    this.left = this.u32();
  }

  /** Moves to the next entry; false after the last (the bytes then ended exactly). */
  next(): boolean {
    if (this.left === 0) {
      if (this.at !== this.bytes.length) this.corrupt();
      return false;
    }
    this.left--;
    const b = this.bytes;
    const nlen = this.u16();
    this.need(nlen);
    const nameAt = this.at;
    this.at += nlen;
    // One path component: not empty, not "." or "..", no "/" or NUL; after the previous name.
    if (nlen === 0 || (nlen <= 2 && b[nameAt] === 0x2e && (nlen === 1 || b[nameAt + 1] === 0x2e))) this.corrupt();
    for (let i = nameAt; i < nameAt + nlen; i++) if (b[i] === 0x2f || b[i] === 0) this.corrupt();
    if (this.prevAt >= 0 && b.compare(b, nameAt, nameAt + nlen, this.prevAt, this.prevAt + this.prevLen) >= 0) this.corrupt();
    this.prevAt = nameAt;
    this.prevLen = nlen;
    this.nameAt = nameAt;
    this.nameLen = nlen;
    this.need(1);
    const kind = b[this.at++]!;
    if (kind < KIND_FILE || kind > KIND_FIFO) this.corrupt();
    this.kind = kind;
    this.readMeta();
    const bare = kind === KIND_DIR || kind === KIND_WHITEOUT;
    if (bare && (this.eMode !== 0 || this.eUid !== 0 || this.eGid !== 0 || this.eMtime !== 0 || this.eXattrs)) this.corrupt();
    this.size = this.i64();
    const sized = kind === KIND_FILE || kind === KIND_HARDLINK;
    if (!sized && this.size !== 0) this.corrupt();
    this.need(32);
    this.refAt = this.at;
    if (!sized && kind !== KIND_DIR) for (let i = this.at; i < this.at + 32; i++) if (b[i] !== 0) this.corrupt();
    this.at += 32;
    const tlen = this.u32();
    this.need(tlen);
    if (tlen !== 0 && kind !== KIND_SYMLINK && kind !== KIND_HARDLINK) this.corrupt();
    this.targetAt = this.at;
    this.targetLen = tlen;
    this.at += tlen;
    this.devmajor = this.u32();
    this.devminor = this.u32();
    if (kind !== KIND_CHAR && kind !== KIND_BLOCK && (this.devmajor !== 0 || this.devminor !== 0)) this.corrupt();
    return true;
  }

  /** The current entry's name bytes (a view of the tree's bytes). */
  name(): Buffer {
    return this.bytes.subarray(this.nameAt, this.nameAt + this.nameLen);
  }

  target(): Buffer {
    return this.bytes.subarray(this.targetAt, this.targetAt + this.targetLen);
  }

  /** The current entry's digest (blob or child tree) as hex. */
  refHex(): string {
    // The whole encoding in hex once, and a slice per entry: a fraction of a toString each.
    this.hex ??= this.bytes.toString('hex');
    return this.hex.slice(2 * this.refAt, 2 * this.refAt + 64);
  }
  private hex: string | undefined;

  private readMeta(): void {
    this.eMode = this.u32();
    this.eUid = this.u32();
    this.eGid = this.u32();
    this.eMtime = this.i64();
    const count = this.u16();
    if (count === 0) {
      this.eXattrs = undefined;
      return;
    }
    const b = this.bytes;
    const xattrs: Record<string, Buffer> = {};
    let prevAt = -1, prevLen = 0;
    for (let i = 0; i < count; i++) {
      const nlen = this.u16();
      this.need(nlen);
      const at = this.at;
      if (prevAt >= 0 && b.compare(b, at, at + nlen, prevAt, prevAt + prevLen) >= 0) this.corrupt(); // sorted by their bytes, unique
      prevAt = at;
      prevLen = nlen;
      this.at += nlen;
      const vlen = this.u32();
      this.need(vlen);
      xattrs[nameFromBytes(b.subarray(at, at + nlen))] = Buffer.from(b.subarray(this.at, this.at + vlen));
      this.at += vlen;
    }
    this.eXattrs = xattrs;
  }

  private need(n: number): void {
    if (this.at + n > this.bytes.length) this.corrupt();
  }

  // The bounds are checked inline (not through `need`): these run a dozen times an entry.
  private u16(): number {
    const b = this.bytes, at = this.at;
    if (at + 2 > b.length) this.corrupt();
    this.at = at + 2;
    return (b[at]! << 8) | b[at + 1]!;
  }

  private u32(): number {
    const b = this.bytes, at = this.at;
    if (at + 4 > b.length) this.corrupt();
    this.at = at + 4;
    return ((b[at]! << 24) >>> 0) + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
  }

  /** An i64 as decodeTree reads it (a Number); one that a Number cannot hold exactly would not encode to itself. */
  private i64(): number {
    if (this.at + 8 > this.bytes.length) this.corrupt();
    const high = this.u32() | 0;
    const low = this.u32();
    if (high >= -0x200000 && high < 0x200000) return high * TWO32 + low;
    const big = this.bytes.readBigInt64BE(this.at - 8);
    const n = Number(big);
    if (BigInt(n) !== big) this.corrupt();
    return n;
  }

  private corrupt(): never {
    decodeTree(this.bytes, this.what); // throws with the reason
    throw new StoreError('OBJECT_CORRUPT', `${this.what} is not in canonical form`);
  }
}
