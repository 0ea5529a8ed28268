import type {Digest} from '../objects/digest.js';
import {PREFIX} from '../index/keys.js';

const DIGEST_BYTES = 32;
const WORDS = DIGEST_BYTES / 4;

/** A buffer's bytes as 32-bit words in the machine's order (a fresh Buffer.alloc starts its own, aligned, ArrayBuffer). */
function wordsOf(b: Buffer): Uint32Array {
  return new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
}
const BLOB = PREFIX.blob;
/** A blob key up to its digest's hex digits (`b:b3:`). */
export const BLOB_DIGEST = `${BLOB}b3:`;

/** A digest's hex as index keys and object files name it: 64 lowercase hex digits. */
const HEX64 = /^[0-9a-f]{64}$/;
const HEX = /^[0-9a-f]*$/;

/**
 * Digests a set keeps as strings before it moves them into its buffer of bytes. A `Map` of
 * hex strings costs ~120 bytes a digest, but its lookups are V8's own code; the buffer's are
 * JavaScript, which a short command runs mostly unoptimised: a cold process's gc spent ~70 ms
 * of CPU in 15,000 operations on the buffer where a Map took ~9 ms (the gcprune store:
 * 5,412 blobs). So a set stays strings up to this many digests (~2 MB, plus the hex of the
 * trees whose slices it holds), and bytes from there on.
 */
export const STRING_DIGESTS_MAX = 16_384;

/**
 * A set of digests: as hex strings while there are at most STRING_DIGESTS_MAX of them, then
 * as their 32 bytes (open addressing over one buffer), about 45 bytes a digest where a `Set`
 * of `b3:…` strings takes 150 or more: what gc and df keep per blob of a million-file store
 * (docs/design.md, "Memory at scale"). Digests keep their index (`digestAt`: the order they
 * were added) through the move. Every digest is 64 lowercase hex digits; anything else is
 * refused (`add*` return undefined) or absent (`has*`).
 */
export class DigestSet {
  /** While the set is small: hex -> index, and the hex by index. */
  private hexIndex: Map<string, number> | undefined = new Map();
  private hexes: string[] = [];
  private bytes = Buffer.alloc(0);
  /** `bytes` as 32-bit words: a digest is compared word by word here (Buffer.compare's call cost more than the comparison). */
  private words = wordsOf(this.bytes);
  /** Index + 1 into `bytes` of the digest in each slot; 0 is empty. A power of two long, at most half full. */
  private slots = new Int32Array(0);
  private count = 0;
  private readonly probe = Buffer.alloc(DIGEST_BYTES);
  private readonly probeWords = wordsOf(this.probe);
  /** Digests converted from hex together (`eachMissingKey`, `addEachHex`). */
  private scratch = Buffer.alloc(0);
  private scratchWords = wordsOf(this.scratch);
  /** The last buffer `addAt`/`indexOfAt` read from, and its hex: one conversion per tree while the set is strings. */
  private lastBuf: Buffer | undefined;
  private lastHex = '';

  /**
   * A set that keeps its digests as bytes from the first: for a small set asked about many
   * digests in trees' encodings (`indexOfAt`), where the strings' form makes the hex of every
   * tree it is asked about (gc's sizes of garbage blobs).
   */
  static ofBytes(): DigestSet {
    const set = new DigestSet();
    set.hexIndex = undefined;
    set.slots = new Int32Array(2);
    return set;
  }

  get size(): number {
    return this.count;
  }

  /** Whether the digests are kept as bytes (`indexOfAt` makes no hex), not as strings. */
  get inBytes(): boolean {
    return this.hexIndex === undefined;
  }

  /** Adds a digest (`b3:<64 hex>`); false when it was there already, undefined when `d` is no digest. */
  add(d: Digest | string): boolean | undefined {
    return this.addHex(d, 'b3:');
  }

  /** Adds the digest of `s`, which is `prefix` and 64 hex digits (an index key, a file name); undefined when it is not. */
  addHex(s: string, prefix: string): boolean | undefined {
    if (s.length !== prefix.length + 2 * DIGEST_BYTES || !s.startsWith(prefix)) return undefined;
    const hex = prefix === '' ? s : s.slice(prefix.length);
    if (!HEX64.test(hex)) return undefined;
    if (this.hexIndex) return this.insertHex(hex);
    this.probe.write(hex, 'hex');
    return this.insert();
  }

  /** Adds the 32 digest bytes at `at` in `buf` (a tree's encoding); false when it was there already. */
  addAt(buf: Buffer, at: number): boolean {
    if (this.hexIndex) return this.insertHex(this.hexAt(buf, at));
    const p = this.probe;
    for (let k = 0; k < DIGEST_BYTES; k++) p[k] = buf[at + k]!; // Buffer.copy's argument checks cost more than the copy
    return this.insert();
  }

  /**
   * Adds the digests of `keys`, each `prefix` and 64 hex digits (a step of a scan of index
   * keys): as bytes, one native conversion for all of them when every key is well formed,
   * else one each. A key that is not is left out.
   */
  addEachHex(keys: readonly string[], prefix: string): void {
    if (!this.hexIndex && this.convert(keys, prefix)) {
      const p = this.probeWords, w = this.scratchWords;
      for (let i = 0; i < keys.length; i++) {
        const o = i * WORDS;
        for (let k = 0; k < WORDS; k++) p[k] = w[o + k]!;
        this.insert();
      }
      return;
    }
    for (const k of keys) this.addHex(k, prefix);
  }

  has(d: Digest | string): boolean {
    return this.hasHex(d, 'b3:');
  }

  /** Whether the set holds the digest of `s`, which is `prefix` and 64 hex digits (false when it is not). */
  hasHex(s: string, prefix: string): boolean {
    if (s.length !== prefix.length + 2 * DIGEST_BYTES || !s.startsWith(prefix)) return false;
    const hex = prefix === '' ? s : s.slice(prefix.length);
    if (this.hexIndex) return this.hexIndex.has(hex);
    return HEX64.test(hex) && this.probe.write(hex, 'hex') === DIGEST_BYTES && this.slots[this.find()] !== 0;
  }

  /**
   * Calls `each` for every key of `keys` (each `prefix` and 64 hex digits: a step of a scan)
   * whose digest the set lacks, a malformed key included. As bytes, one native conversion
   * for all of them, where a lookup each cost a call into Buffer's hex code per key.
   */
  eachMissingKey(keys: readonly string[], prefix: string, each: (key: string) => void): void {
    if (!this.hexIndex && this.convert(keys, prefix)) {
      const p = this.probeWords, w = this.scratchWords;
      for (let i = 0; i < keys.length; i++) {
        const o = i * WORDS;
        for (let k = 0; k < WORDS; k++) p[k] = w[o + k]!;
        if (this.slots[this.find()] === 0) each(keys[i]!);
      }
      return;
    }
    for (const k of keys) if (!this.hasHex(k, prefix)) each(k);
  }

  *[Symbol.iterator](): IterableIterator<Digest> {
    for (let i = 0; i < this.count; i++) yield this.digestAt(i);
  }

  /**
   * The digests of this set that `other` lacks, in the order they were added, compared as
   * bytes when both sets are: only those come back as hex (gc's sweep, where nearly every
   * blob is in both).
   */
  *without(other: DigestSet): IterableIterator<Digest> {
    for (const i of this.indexesWithout(other)) yield this.digestAt(i);
  }

  /** `without` as the digests' indexes in this set (the order they were added: 0, 1, …). */
  *indexesWithout(other: DigestSet): IterableIterator<number> {
    if (this.hexIndex || other.hexIndex) {
      for (let i = 0; i < this.count; i++) if (!other.hasHex(this.hexOfIndex(i), '')) yield i;
      return;
    }
    const p = other.probeWords;
    for (let i = 0; i < this.count; i++) {
      const o = i * WORDS, w = this.words;
      for (let k = 0; k < WORDS; k++) p[k] = w[o + k]!;
      if (other.slots[other.find()] === 0) yield i;
    }
  }

  /** The digest added `i`-th (0 first). */
  digestAt(i: number): Digest {
    if (!(i >= 0 && i < this.count)) throw new RangeError(`digestAt(${i}) of ${this.count}`);
    return `b3:${this.hexOfIndex(i)}` as Digest;
  }

  /** The index (as `digestAt` counts) of the digest whose 32 bytes are at `at` in `buf`, or -1. */
  indexOfAt(buf: Buffer, at: number): number {
    if (this.hexIndex) return this.hexIndex.get(this.hexAt(buf, at)) ?? -1;
    // The first word alone rules out most digests a set lacks: the rest is copied only for a slot whose first word matches.
    const p = this.probe, w = this.words, mask = this.slots.length - 1;
    p[0] = buf[at]!; p[1] = buf[at + 1]!; p[2] = buf[at + 2]!; p[3] = buf[at + 3]!;
    const first = this.probeWords[0]!;
    for (let s = first & mask; ; s = (s + 1) & mask) {
      const i = this.slots[s]!;
      if (i === 0) return -1;
      if (w[(i - 1) * WORDS] !== first) continue;
      for (let k = 4; k < DIGEST_BYTES; k++) p[k] = buf[at + k]!;
      return this.slots[this.find()]! - 1;
    }
  }

  /**
   * For each reference in `refs` (triples as `treeRefsAt` gives them: kind code, offset of the
   * digest in `buf`, size) of kind `kind` whose digest the set holds, calls `each` with the
   * digest's index and the reference's size. One call for a tree's references, and a call
   * back only for a digest found: gc asks about every file entry of every garbage tree, in a
   * short process that runs this unoptimised, where a call per entry was most of the cost.
   */
  eachRefHeld(buf: Buffer, refs: readonly number[], count: number, kind: number, each: (i: number, size: number) => void): void {
    if (this.hexIndex) {
      for (let r = 0; r < count; r += 3) {
        if (refs[r] !== kind) continue;
        const i = this.indexOfAt(buf, refs[r + 1]!);
        if (i >= 0) each(i, refs[r + 2]!);
      }
      return;
    }
    const p = this.probe, first = this.probeWords, w = this.words, bytes = this.bytes, slots = this.slots, mask = slots.length - 1;
    for (let r = 0; r < count; r += 3) {
      if (refs[r] !== kind) continue;
      const at = refs[r + 1]!;
      p[0] = buf[at]!; p[1] = buf[at + 1]!; p[2] = buf[at + 2]!; p[3] = buf[at + 3]!;
      const w0 = first[0]!;
      // The first word rules out nearly every digest the set lacks; the rest is compared only where it matches.
      for (let s = w0 & mask; ; s = (s + 1) & mask) {
        const i = slots[s]!;
        if (i === 0) break;
        if (w[(i - 1) * WORDS] !== w0) continue;
        const o = (i - 1) * DIGEST_BYTES;
        let k = 4;
        while (k < DIGEST_BYTES && bytes[o + k] === buf[at + k]) k++;
        if (k === DIGEST_BYTES) {
          each(i - 1, refs[r + 2]!);
          break;
        }
      }
    }
  }

  private hexOfIndex(i: number): string {
    return this.hexIndex ? this.hexes[i]! : this.bytes.toString('hex', i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES);
  }

  /** The hex of 32 bytes at `at` in `buf`: a slice of the buffer's hex, made once per buffer (a toString per digest cost several times more). */
  private hexAt(buf: Buffer, at: number): string {
    if (buf !== this.lastBuf) {
      this.lastBuf = buf;
      this.lastHex = buf.toString('hex');
    }
    return this.lastHex.slice(2 * at, 2 * (at + DIGEST_BYTES));
  }

  private insertHex(hex: string): boolean {
    const index = this.hexIndex!;
    if (index.has(hex)) return false;
    index.set(hex, this.count++);
    this.hexes.push(hex);
    if (this.count > STRING_DIGESTS_MAX) this.toBytes();
    return true;
  }

  /** Moves the digests from strings into the buffer, in their order (their indexes stay). */
  private toBytes(): void {
    const hexes = this.hexes;
    this.hexIndex = undefined;
    this.hexes = [];
    this.lastBuf = undefined;
    this.lastHex = '';
    this.count = 0;
    this.bytes = Buffer.alloc(2 * hexes.length * DIGEST_BYTES);
    this.words = wordsOf(this.bytes);
    let slots = 2;
    while (slots < 4 * hexes.length) slots *= 2;
    this.slots = new Int32Array(slots);
    for (let from = 0; from < hexes.length; from += SCRATCH_DIGESTS) {
      const step = hexes.slice(from, from + SCRATCH_DIGESTS);
      if (!this.convert(step, '')) throw new Error('assertion failed: a digest set held a string that is no digest');
      const p = this.probeWords, w = this.scratchWords;
      for (let i = 0; i < step.length; i++) {
        const o = i * WORDS;
        for (let k = 0; k < WORDS; k++) p[k] = w[o + k]!;
        this.insert();
      }
    }
  }

  /**
   * Converts the digests of `keys` (each `prefix` and 64 hex digits) into `scratch`, with one
   * native call; false, converting nothing, unless every key is exactly that.
   */
  private convert(keys: readonly string[], prefix: string): boolean {
    const from = prefix.length;
    if (!keys.every(k => k.length === from + 2 * DIGEST_BYTES && k.startsWith(prefix))) return false;
    const hex = from === 0 ? keys.join('') : keys.map(k => k.slice(from)).join('');
    if (!HEX.test(hex)) return false;
    const n = keys.length;
    if (this.scratch.length < n * DIGEST_BYTES) {
      this.scratch = Buffer.alloc(n * DIGEST_BYTES);
      this.scratchWords = wordsOf(this.scratch);
    }
    return this.scratch.write(hex, 'hex') === n * DIGEST_BYTES;
  }

  /** Puts `probe` in the set (in bytes); false when it was there already. */
  private insert(): boolean {
    const at = this.find();
    if (this.slots[at] !== 0) return false;
    if (this.count * DIGEST_BYTES === this.bytes.length) {
      const grown = Buffer.alloc(Math.max(1024 * DIGEST_BYTES, this.bytes.length * 2));
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

/** Digests converted from hex at once when a set moves to bytes. */
const SCRATCH_DIGESTS = 1024;

/** What a reader of the mark needs: membership. */
export interface KeyLookup {
  has(key: string): boolean;
}

/**
 * A set of index keys in which blob keys (`b:b3:…`, nearly every node of a store's graph) are
 * kept in a `DigestSet` (32 bytes each once there are many) and every other key as a string: gc's and df's mark
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
    const added = this.blobs.addHex(key, BLOB_DIGEST);
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
    return this.blobs.hasHex(key, BLOB_DIGEST) || this.others.has(key);
  }

  /**
   * Calls `each` for every key of `keys` (blob keys, as a scan lists them) whose blob this set
   * lacks, a malformed one included unless it was added as it is (DigestSet.eachMissingKey).
   */
  eachBlobKeyMissing(keys: readonly string[], each: (key: string) => void): void {
    this.blobs.eachMissingKey(keys, BLOB_DIGEST, k => { if (!this.others.has(k)) each(k); });
  }

  /** Whether the set holds the blob key of the digest `hex` (64 hex digits, as an object file is named). */
  hasBlobHex(hex: string): boolean {
    return this.blobs.hasHex(hex, '');
  }

  /** The digests of `digests` whose blob keys this set lacks (DigestSet.without: no hex but theirs). */
  blobsMissing(digests: DigestSet): IterableIterator<Digest> {
    return digests.without(this.blobs);
  }

  /** `blobsMissing` as indexes into `digests` (DigestSet.indexesWithout). */
  blobIndexesMissing(digests: DigestSet): IterableIterator<number> {
    return digests.indexesWithout(this.blobs);
  }

  *[Symbol.iterator](): IterableIterator<string> {
    yield* this.others;
    for (const d of this.blobs) yield `${BLOB}${d}`;
  }
}

