import * as fs from 'node:fs';
import type {Digest} from '../objects/digest.js';
import {DigestSet} from '../maintenance/keySet.js';

const CHUNK_BYTES = 1 << 20;
/** Chunks kept in memory; later ones go to the spool's file. */
const MEMORY_CHUNKS = 32;

/**
 * The bytes of the inline blobs a store handle stored (`Store.takeInlineSpool`), so that
 * the pack of the layer being stored (layerPacks.ts) is written from bytes this process
 * hashed itself rather than read from the index (a LevelDB lookup each, and a hash to
 * check the bytes: most of a layer pack's cost when read so). The first 32 MiB stay in
 * memory (a layer of some thousand small files: no file at all); the rest goes, 1 MiB at
 * a time, to a file under tmp/, read back with a pread a blob. Bounded memory: 33 MiB of
 * bytes and ~60 bytes a blob (its digest in a DigestSet, its place and size).
 *
 * Nothing depends on it: a blob it lacks is read from the index, and a spool that cannot
 * write its file (a full disk) stops keeping bytes and answers nothing. The file is removed
 * by `discard`, and, if the process dies first, by gc (tmp/ files of dead processes).
 */
export class InlineSpool {
  private fd = -1;
  private file: string | undefined;
  private broken = false;
  private readonly digests = new DigestSet();
  /** Per blob (as the DigestSet numbers them): where its bytes start (chunk * CHUNK_BYTES + offset), and how many. */
  private places = new Float64Array(1024);
  private sizes = new Uint32Array(1024);
  /** Chunks in memory (the first MEMORY_CHUNKS, and the one being filled). */
  private readonly chunks: Buffer[] = [];
  private chunk = -1;
  private used = CHUNK_BYTES;

  /** `tmpFile` names the file, when the first chunk past memory is written (most commands make none). */
  constructor(private readonly tmpFile: () => string) {}

  /** Keeps a blob's bytes (the first time its digest comes). */
  add(d: Digest, data: Uint8Array): void {
    if (this.broken || data.length > CHUNK_BYTES) return;
    try {
      if (this.digests.add(d) !== true) return;
      const i = this.digests.size - 1;
      if (i >= this.places.length) {
        const places = new Float64Array(2 * this.places.length), sizes = new Uint32Array(2 * this.sizes.length);
        places.set(this.places);
        sizes.set(this.sizes);
        this.places = places;
        this.sizes = sizes;
      }
      if (data.length > CHUNK_BYTES - this.used) this.nextChunk();
      this.chunks[this.chunk]!.set(data, this.used);
      this.places[i] = this.chunk * CHUNK_BYTES + this.used;
      this.sizes[i] = data.length;
      this.used += data.length;
    } catch {
      this.discard();
    }
  }

  /** The bytes kept for the blob of this hex digest, or undefined. */
  read(hex: string): Buffer | undefined {
    // A buffer each: DigestSet remembers the last buffer it read a digest from.
    const probe = Buffer.from(hex, 'hex');
    return probe.length === 32 ? this.readAt(probe, 0) : undefined;
  }

  /**
   * `read` of the digest whose 32 bytes are at `offset` in `digests`, which must not change
   * between calls (DigestSet converts a buffer to hex once, while it keeps digests as
   * strings): a layer pack reads its blobs so from one buffer of all their digests in order,
   * not a buffer and a hex string per blob (two conversions each, ~0.1 s of a cold pack of
   * 10,000 blobs).
   */
  readAt(digests: Buffer, offset: number): Buffer | undefined {
    if (this.broken || this.digests.size === 0) return undefined;
    const i = this.digests.indexOfAt(digests, offset);
    if (i < 0) return undefined;
    const place = this.places[i]!, n = this.sizes[i]!;
    const c = Math.floor(place / CHUNK_BYTES), at = place % CHUNK_BYTES;
    const inMemory = this.chunks[c];
    if (inMemory) return inMemory.subarray(at, at + n);
    const out = Buffer.allocUnsafe(n);
    try {
      const pos = (c - MEMORY_CHUNKS) * CHUNK_BYTES + at;
      for (let got = 0; got < n;) {
        const k = fs.readSync(this.fd, out, got, n - got, pos + got);
        if (k === 0) return undefined;
        got += k;
      }
    } catch {
      return undefined;
    }
    return out;
  }

  /** Removes the file and lets go of the bytes; the spool keeps nothing from now on. */
  discard(): void {
    this.broken = true;
    this.chunks.length = 0;
    if (this.fd >= 0) {
      try { fs.closeSync(this.fd); } catch { /* gone already */ }
      this.fd = -1;
    }
    if (this.file) fs.rmSync(this.file, {force: true});
  }

  /** Starts the next chunk; a full one past the memory chunks is written to the file (whole: places are by chunk) and let go. */
  private nextChunk(): void {
    const full = this.chunk;
    if (full >= MEMORY_CHUNKS) {
      if (this.fd < 0) this.fd = fs.openSync(this.file = this.tmpFile(), 'wx+', 0o600);
      const b = this.chunks[full]!;
      const pos = (full - MEMORY_CHUNKS) * CHUNK_BYTES;
      for (let at = 0; at < this.used;) at += fs.writeSync(this.fd, b, at, this.used - at, pos + at);
      this.chunks[full + 1] = b; // reused: its bytes are in the file now
      delete this.chunks[full];
    } else {
      this.chunks[full + 1] = Buffer.allocUnsafe(CHUNK_BYTES);
    }
    this.chunk = full + 1;
    this.used = 0;
  }
}
