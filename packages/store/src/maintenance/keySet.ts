import type {Digest} from '../objects/digest.js';
import {PREFIX} from '../index/keys.js';

const DIGEST_BYTES = 32;
const WORDS = DIGEST_BYTES / 4;
const HEX_AT = 'b3:'.length;

/** A buffer's bytes as 32-bit words in the machine's order (a fresh Buffer.alloc starts its own, aligned, ArrayBuffer). */
function wordsOf(b: Buffer): Uint32Array {
  return new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
}
const BLOB = PREFIX.blob;
/** A blob key up to its digest's hex digits. */
const BLOB_DIGEST = `${BLOB}b3:`;

/**
 * A set of digests held as their 32 bytes (open addressing over one buffer), not as strings:
 * about 45 bytes a digest where a `Set` of `b3:…` strings takes 150 or more. What gc and df
 * keep per blob of a million-file store (docs/design.md, "Memory at scale").
 */
export class DigestSet {
  private bytes = Buffer.alloc(1024 * DIGEST_BYTES);
  /** `bytes` as 32-bit words: a digest is compared word by word here (Buffer.compare's call cost more than the comparison). */
  private words = wordsOf(this.bytes);
  /** Index + 1 into `bytes` of the digest in each slot; 0 is empty. A power of two long, at most half full. */
  private slots = new Int32Array(2048);
  private count = 0;
  private readonly probe = Buffer.alloc(DIGEST_BYTES);
  private readonly probeWords = wordsOf(this.probe);
  /** Digests converted from hex together (`eachMissingHex`). */
  private scratch = Buffer.alloc(0);
  private scratchWords = wordsOf(this.scratch);

  get size(): number {
    return this.count;
  }

  /** Adds a digest (`b3:<64 hex>`); false when it was there already, undefined when `d` is no digest. */
  add(d: Digest | string): boolean | undefined {
    return d.startsWith('b3:') && this.loadHex(d, HEX_AT) ? this.insert() : undefined;
  }

  /** Adds the 64 hex digits of a digest that start at `from` in `s` (an index key); undefined when they are not. */
  addHex(s: string, from: number): boolean | undefined {
    return this.loadHex(s, from) ? this.insert() : undefined;
  }

  /** Adds the 32 digest bytes at `at` in `buf` (a tree's encoding); false when it was there already. */
  addAt(buf: Buffer, at: number): boolean {
    const p = this.probe;
    for (let k = 0; k < DIGEST_BYTES; k++) p[k] = buf[at + k]!; // Buffer.copy's argument checks cost more than the copy
    return this.insert();
  }

  /** Puts `probe` in the set; false when it was there already. */
  private insert(): boolean {
    const at = this.find();
    if (this.slots[at] !== 0) return false;
    if (this.count * DIGEST_BYTES === this.bytes.length) {
      const grown = Buffer.alloc(this.bytes.length * 2);
      this.bytes.copy(grown);
      this.bytes = grown;
      this.words = wordsOf(grown);
    }
    this.bytes.set(this.probe, this.count * DIGEST_BYTES); // a typed-array copy: no call through Buffer.copy's checks
    this.count++;
    this.slots[at] = this.count;
    if (this.count * 2 > this.slots.length) this.rehash();
    return true;
  }

  has(d: Digest | string): boolean {
    return d.startsWith('b3:') && this.loadHex(d, HEX_AT) && this.slots[this.find()] !== 0;
  }

  /** Whether the set holds the digest whose 64 hex digits start at `from` in `s`. */
  hasHex(s: string, from: number): boolean {
    return this.loadHex(s, from) && this.slots[this.find()] !== 0;
  }

  *[Symbol.iterator](): IterableIterator<Digest> {
    for (let i = 0; i < this.count; i++) yield `b3:${this.bytes.toString('hex', i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES)}` as Digest;
  }

  /**
   * The digests of this set that `other` lacks, in the order they were added, compared as
   * bytes: only those come back as hex (gc's sweep, where nearly every blob is in both).
   */
  *without(other: DigestSet): IterableIterator<Digest> {
    const p = other.probeWords;
    for (let i = 0; i < this.count; i++) {
      const o = i * WORDS, w = this.words;
      for (let k = 0; k < WORDS; k++) p[k] = w[o + k]!;
      if (other.slots[other.find()] === 0) yield `b3:${this.bytes.toString('hex', i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES)}` as Digest;
    }
  }

  /**
   * Calls `each(i)` for every digest of `hex` the set lacks, where `hex` is `n` digests of
   * 64 hex digits each, one after the other (a step of a scan, joined): one native
   * conversion for all of them, where a lookup each cost a call into Buffer's hex code per
   * digest. False, having called nothing, when `hex` is not that.
   */
  eachMissingHex(hex: string, n: number, each: (i: number) => void): boolean {
    if (hex.length !== n * 2 * DIGEST_BYTES) return false;
    if (this.scratch.length < n * DIGEST_BYTES) {
      this.scratch = Buffer.alloc(n * DIGEST_BYTES);
      this.scratchWords = wordsOf(this.scratch);
    }
    if (this.scratch.write(hex, 'hex') !== n * DIGEST_BYTES) return false;
    const p = this.probeWords, w = this.scratchWords;
    for (let i = 0; i < n; i++) {
      const o = i * WORDS;
      for (let k = 0; k < WORDS; k++) p[k] = w[o + k]!;
      if (this.slots[this.find()] === 0) each(i);
    }
    return true;
  }

  /** Puts the digest whose hex digits start at `from` in `s` into `probe`; false unless `s` ends in exactly 64 hex digits there. */
  private loadHex(s: string, from: number): boolean {
    return s.length === from + 2 * DIGEST_BYTES && this.probe.write(from === 0 ? s : s.slice(from), 'hex') === DIGEST_BYTES;
  }

  /** The slot of `probe`: where it is, or the empty slot where it would go. Digests are uniform, so their first bytes are the hash. */
  private find(): number {
    const mask = this.slots.length - 1;
    const p = this.probeWords, w = this.words;
    for (let at = p[0]! & mask; ; at = (at + 1) & mask) {
      const i = this.slots[at]!;
      if (i === 0) return at;
      const o = (i - 1) * WORDS;
      if (w[o] === p[0] && w[o + 1] === p[1] && w[o + 2] === p[2] && w[o + 3] === p[3] && w[o + 4] === p[4] && w[o + 5] === p[5] && w[o + 6] === p[6] && w[o + 7] === p[7]) return at;
    }
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2);
    const mask = slots.length - 1;
    for (let i = 0; i < this.count; i++) {
      let at = this.words[i * WORDS]! & mask;
      while (slots[at] !== 0) at = (at + 1) & mask;
      slots[at] = i + 1;
    }
    this.slots = slots;
  }
}

/** What a reader of the mark needs: membership. */
export interface KeyLookup {
  has(key: string): boolean;
}

/**
 * A set of index keys in which blob keys (`b:b3:…`, nearly every node of a store's graph) are
 * kept as 32 bytes each (`DigestSet`) and every other key as a string: gc's and df's mark
 * of a million-file store without a million strings.
 */
export class KeySet implements KeyLookup, Iterable<string> {
  private readonly blobs = new DigestSet();
  private readonly others = new Set<string>();

  get size(): number {
    return this.blobs.size + this.others.size;
  }

  /** Adds a key; false when it was there already. */
  add(key: string): boolean {
    // A malformed blob key (a torn lease line) is kept as the string it is.
    const added = key.startsWith(BLOB_DIGEST) ? this.blobs.addHex(key, BLOB_DIGEST.length) : undefined;
    if (added !== undefined) return added;
    if (this.others.has(key)) return false;
    this.others.add(key);
    return true;
  }

  /** Adds the blob key of the digest whose 32 bytes are at `at` in `buf`; false when it was there already. */
  addBlobAt(buf: Buffer, at: number): boolean {
    return this.blobs.addAt(buf, at);
  }

  has(key: string): boolean {
    return key.startsWith(BLOB_DIGEST) && this.blobs.hasHex(key, BLOB_DIGEST.length) || this.others.has(key);
  }

  /**
   * Calls `each` for every key of `keys` (blob keys, as a scan lists them) whose blob this set
   * lacks, a malformed one included: one hex conversion for them all (DigestSet.eachMissingHex).
   */
  eachBlobKeyMissing(keys: readonly string[], each: (key: string) => void): void {
    const at = BLOB_DIGEST.length;
    const wellFormed = keys.every(k => k.length === at + 2 * DIGEST_BYTES && k.startsWith(BLOB_DIGEST));
    if (wellFormed && this.blobs.eachMissingHex(keys.map(k => k.slice(at)).join(''), keys.length, i => each(keys[i]!))) return;
    for (const k of keys) if (!this.has(k)) each(k);
  }

  /** Whether the set holds the blob key of the digest `hex` (64 hex digits, as an object file is named). */
  hasBlobHex(hex: string): boolean {
    return this.blobs.hasHex(hex, 0);
  }

  /** The digests of `digests` whose blob keys this set lacks (DigestSet.without: no hex but theirs). */
  blobsMissing(digests: DigestSet): IterableIterator<Digest> {
    return digests.without(this.blobs);
  }

  *[Symbol.iterator](): IterableIterator<string> {
    yield* this.others;
    for (const d of this.blobs) yield `${BLOB}${d}`;
  }
}

