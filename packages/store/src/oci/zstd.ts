import {createRequire} from 'node:module';
import {Transform, type TransformCallback} from 'node:stream';
import {StoreError} from '../errors.js';

/**
 * zstd through @mongodb-js/zstd (libzstd, prebuilt), which compresses and decompresses
 * whole buffers on libuv's thread pool. Streams are cut into frames: a zstd stream may be
 * any number of concatenated frames (RFC 8878 §3.1), so strata writes one frame per
 * FRAME_BYTES of input, and reads any stream frame by frame, finding each frame's end
 * from its block headers without decompressing.
 */
interface ZstdBinding {
  compress(data: Buffer, level: number): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
}

let binding: ZstdBinding | undefined;
function zstd(): ZstdBinding {
  // The package's index.js drops the level argument; its bindings take it.
  binding ??= createRequire(import.meta.url)('@mongodb-js/zstd/bindings') as ZstdBinding;
  return binding;
}

/**
 * Input bytes per written frame. Fixed, so the same input gives the same output. 4 MiB:
 * the frames cost 0.1–0.3 % of size against one frame at level 3 (whose window is 2 MiB
 * anyway), and two of them compress at once, one per core.
 */
export const FRAME_BYTES = 4 << 20;
/** Frames compressed at once (and held in memory) by one compressor. */
const IN_FLIGHT = 2;
/** A frame declaring more than this is refused rather than decompressed into memory. */
const MAX_FRAME_OUTPUT = 1 << 30;

/** A zstd compressor stage at `level`: one frame per FRAME_BYTES of input, in order. */
export function createZstdCompressor(level: number): Transform {
  const lib = zstd();
  let parts: Buffer[] = [];
  let size = 0;
  let frames = 0;
  const queue: Promise<Buffer>[] = [];
  const cut = () => {
    queue.push(lib.compress(Buffer.concat(parts, size), level));
    frames++;
    parts = [];
    size = 0;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      void (async () => {
        for (let at = 0; at < chunk.length;) {
          const take = Math.min(FRAME_BYTES - size, chunk.length - at);
          parts.push(chunk.subarray(at, at + take));
          size += take;
          at += take;
          if (size === FRAME_BYTES) {
            cut();
            if (queue.length >= IN_FLIGHT) this.push(await queue.shift()!);
          }
        }
      })().then(() => done(), err => done(zstdError(err, 'compress')));
    },
    flush(done: TransformCallback) {
      void (async () => {
        if (size > 0 || frames === 0) cut(); // an empty input still gets one (empty) frame: a valid zstd stream
        while (queue.length > 0) this.push(await queue.shift()!);
      })().then(() => done(), err => done(zstdError(err, 'compress')));
    },
  });
}

/**
 * A zstd decompressor stage: splits its input into frames (skipping skippable frames) and
 * decompresses each whole, so memory holds one frame (compressed and plain) at a time.
 * Data that is not zstd, or a stream that ends inside a frame, errors with BAD_ARCHIVE.
 */
export function createZstdDecompressor(): Transform {
  const lib = zstd();
  const reader = new FrameReader();
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      void (async () => {
        reader.add(chunk);
        for (let frame = reader.next(); frame; frame = reader.next()) {
          if (frame.kind === 'data') this.push(await lib.decompress(frame.bytes));
        }
      })().then(() => done(), err => done(zstdError(err, 'decompress')));
    },
    flush(done: TransformCallback) {
      if (reader.pending > 0) done(new StoreError('BAD_ARCHIVE', `the zstd stream ends inside a frame (${reader.pending} bytes left over)`));
      else done();
    },
  });
}

function zstdError(err: unknown, what: string): Error {
  if (err instanceof StoreError) return err;
  return new StoreError('BAD_ARCHIVE', `zstd could not ${what} the data: ${(err as Error).message}`, {cause: err});
}

const FRAME_MAGIC = 0xfd2fb528;
/** Skippable frames: magic 0x184D2A50–0x184D2A5F, then a u32 size, then that many bytes. */
const isSkippableMagic = (m: number) => (m & 0xfffffff0) === 0x184d2a50;

/**
 * Finds frame boundaries in a zstd stream fed in chunks (RFC 8878 §3.1.1): the frame
 * header's size follows from its descriptor byte, then 3-byte block headers give each
 * block's size until the last block, then an optional 4-byte checksum. Parsing resumes
 * where it stopped, so a frame spread over many chunks is scanned once.
 */
class FrameReader {
  private chunks: Buffer[] = [];
  private total = 0;
  /** Parse state inside the current frame: where the next header starts, and what it is. */
  private cursor = 0;
  private state: 'start' | 'blocks' | 'checksum' | 'skip' = 'start';
  private checksum = false;
  private frameEnd = 0;

  get pending(): number {
    return this.total;
  }

  add(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** The next whole frame, or undefined until more bytes arrive. */
  next(): {kind: 'data' | 'skip'; bytes: Buffer} | undefined {
    for (;;) {
      if (this.state === 'start') {
        if (this.total < 4) return undefined;
        const magic = this.u32(0);
        if (isSkippableMagic(magic)) {
          if (this.total < 8) return undefined;
          this.frameEnd = 8 + this.u32(4);
          this.state = 'skip';
          continue;
        }
        if (magic !== FRAME_MAGIC) throw new StoreError('BAD_ARCHIVE', 'the data is not zstd (no frame magic where a frame should start)');
        if (this.total < 5) return undefined;
        const fhd = this.byte(4);
        const fcsFlag = fhd >> 6, single = (fhd >> 5) & 1, dictFlag = fhd & 3;
        if (fhd & 0x08) throw new StoreError('BAD_ARCHIVE', 'the zstd frame header sets a reserved bit');
        this.checksum = ((fhd >> 2) & 1) === 1;
        const fcsBytes = [single ? 1 : 0, 2, 4, 8][fcsFlag]!;
        if (fcsFlag === 3 || fcsFlag === 2) {
          const headerEnd = 5 + (single ? 0 : 1) + [0, 1, 2, 4][dictFlag]!;
          if (this.total < headerEnd + fcsBytes) return undefined;
          const size = fcsBytes === 8 ? this.u32(headerEnd) + this.u32(headerEnd + 4) * 2 ** 32 : this.u32(headerEnd);
          if (size > MAX_FRAME_OUTPUT) throw new StoreError('BAD_ARCHIVE', `a zstd frame declares ${size} bytes, more than strata decompresses at once`);
        }
        this.cursor = 5 + (single ? 0 : 1) + [0, 1, 2, 4][dictFlag]! + fcsBytes;
        this.state = 'blocks';
      }
      if (this.state === 'blocks') {
        for (;;) {
          if (this.total < this.cursor + 3) return undefined;
          const h = this.byte(this.cursor) | (this.byte(this.cursor + 1) << 8) | (this.byte(this.cursor + 2) << 16);
          const last = h & 1, type = (h >> 1) & 3, size = h >>> 3;
          if (type === 3) throw new StoreError('BAD_ARCHIVE', 'a zstd block has the reserved type');
          this.cursor += 3 + (type === 1 ? 1 : size);
          if (last) break;
        }
        this.frameEnd = this.cursor + (this.checksum ? 4 : 0);
        this.state = 'checksum';
      }
      // 'checksum' and 'skip': the frame ends at frameEnd.
      if (this.total < this.frameEnd) return undefined;
      const kind = this.state === 'skip' ? 'skip' : 'data';
      const bytes = this.take(this.frameEnd);
      this.state = 'start';
      this.cursor = 0;
      if (kind === 'data') return {kind, bytes};
    }
  }

  /** Chunk `hint` starts at offset `hintStart`; reads only move forward within a frame, so the search starts there. */
  private hint = 0;
  private hintStart = 0;

  private byte(at: number): number {
    if (at < this.hintStart) {
      this.hint = 0;
      this.hintStart = 0;
    }
    for (let i = this.hint, start = this.hintStart; i < this.chunks.length; start += this.chunks[i]!.length, i++) {
      const c = this.chunks[i]!;
      if (at < start + c.length) {
        this.hint = i;
        this.hintStart = start;
        return c[at - start]!;
      }
    }
    throw new RangeError('FrameReader: read past the data');
  }

  private u32(at: number): number {
    return (this.byte(at) | (this.byte(at + 1) << 8) | (this.byte(at + 2) << 16)) + this.byte(at + 3) * 2 ** 24;
  }

  /** Removes and returns the first n bytes. */
  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.total);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.total -= n;
    this.hint = 0;
    this.hintStart = 0;
    return all.subarray(0, n);
  }
}
