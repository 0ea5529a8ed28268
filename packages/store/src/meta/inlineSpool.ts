import * as fs from 'node:fs';
import type {Digest} from '../objects/digest.js';
import {DigestSet} from '../maintenance/keySet.js';

const BUFFER_BYTES = 1 << 20;

/**
 * The bytes of the inline blobs a store handle stored, kept in a file of its own under tmp/
 * (`Store.takeInlineSpool`), so that the pack of the layer being stored (layerPacks.ts) is
 * written from bytes this process hashed itself, read back in the pack's order with one
 * pread each, rather than read from the index (a LevelDB lookup each, and a hash to check
 * the bytes: most of a layer pack's cost). Bounded memory: 1 MiB of bytes not yet written,
 * and ~60 bytes a blob (its digest in a DigestSet, its place and size).
 *
 * Nothing depends on it: a blob it lacks is read from the index, and a spool that cannot
 * write its file (a full disk) stops keeping bytes and answers nothing. The file is removed
 * by `discard`, and, if the process dies first, by gc (tmp/ files of dead processes).
 */
export class InlineSpool {
  private fd = -1;
  private broken = false;
  private readonly digests = new DigestSet();
  private offsets = new Float64Array(1024);
  private sizes = new Uint32Array(1024);
  private buf = Buffer.allocUnsafe(BUFFER_BYTES);
  private used = 0;
  private flushed = 0;

  private file: string | undefined;

  /** `tmpFile` names the file, when the first MiB is written (a command that stores a few small blobs makes none). */
  constructor(private readonly tmpFile: () => string) {}

  /** Keeps a blob's bytes (the first time its digest comes). */
  add(d: Digest, data: Uint8Array): void {
    if (this.broken || data.length > BUFFER_BYTES) return;
    try {
      if (this.digests.add(d) !== true) return;
      const i = this.digests.size - 1;
      if (i >= this.offsets.length) {
        const offsets = new Float64Array(2 * this.offsets.length), sizes = new Uint32Array(2 * this.sizes.length);
        offsets.set(this.offsets);
        sizes.set(this.sizes);
        this.offsets = offsets;
        this.sizes = sizes;
      }
      if (data.length > BUFFER_BYTES - this.used) this.flush();
      this.buf.set(data, this.used);
      this.offsets[i] = this.flushed + this.used;
      this.sizes[i] = data.length;
      this.used += data.length;
    } catch {
      this.discard();
    }
  }

  /** The bytes kept for the blob of this hex digest, or undefined. */
  read(hex: string): Buffer | undefined {
    if (this.broken || this.digests.size === 0) return undefined;
    // A buffer each: DigestSet remembers the last buffer it read a digest from.
    const probe = Buffer.from(hex, 'hex');
    if (probe.length !== 32) return undefined;
    const i = this.digests.indexOfAt(probe, 0);
    if (i < 0) return undefined;
    const at = this.offsets[i]!, n = this.sizes[i]!;
    const out = Buffer.allocUnsafe(n);
    if (at >= this.flushed) {
      this.buf.copy(out, 0, at - this.flushed, at - this.flushed + n);
      return out;
    }
    try {
      for (let got = 0; got < n;) {
        const k = fs.readSync(this.fd, out, got, n - got, at + got);
        if (k === 0) return undefined;
        got += k;
      }
    } catch {
      return undefined;
    }
    return out;
  }

  /** Removes the file; the spool keeps nothing from now on. */
  discard(): void {
    this.broken = true;
    this.buf = Buffer.alloc(0);
    if (this.fd >= 0) {
      try { fs.closeSync(this.fd); } catch { /* gone already */ }
      this.fd = -1;
    }
    if (this.file) fs.rmSync(this.file, {force: true});
  }

  private flush(): void {
    if (this.fd < 0) this.fd = fs.openSync(this.file = this.tmpFile(), 'wx+', 0o600);
    for (let at = 0; at < this.used;) at += fs.writeSync(this.fd, this.buf, at, this.used - at);
    this.flushed += this.used;
    this.used = 0;
  }
}
