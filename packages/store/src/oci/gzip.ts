import {availableParallelism} from 'node:os';
import {Transform, type TransformCallback} from 'node:stream';
import {promisify} from 'node:util';
import * as zlib from 'node:zlib';

// zlib and os are reached when a layer is compressed, not when the store's modules load
// (every command loads this module; few compress).
let deflateRawAsync: ((buf: Buffer, options: zlib.ZlibOptions) => Promise<Buffer>) | undefined;
const deflateRaw = (buf: Buffer, options: zlib.ZlibOptions) => (deflateRawAsync ??= promisify(zlib.deflateRaw))(buf, options);

/**
 * Input bytes per deflate block. Fixed, so the same input gives the same output however
 * it was chunked or scheduled. 1 MiB: on a 34 MiB layer tar the blocks together were 195
 * bytes *smaller* than one zlib stream (each block's fresh Huffman tables fit its data), and
 * a block is about 60 ms of one core's work, small enough to keep every core busy.
 */
export const GZIP_BLOCK_BYTES = 1 << 20;
/** deflate's window: each block starts with the 32 KiB before it as its dictionary, so matches reach back across blocks. */
const WINDOW = 32 * 1024;
/** Blocks compressed at once (and held in memory): one per core, up to 4 (libuv's pool also reads the object files). */
const inFlight = () => Math.max(2, Math.min(4, availableParallelism()));
/**
 * gzip's member header (RFC 1952 §2.3): deflate, no flags, no time, XFL 0, OS 3 (Unix):
 * the bytes zlib writes at level 6 with no name or time, so a reader sees what it always saw.
 */
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03]);

/** CRC-32 (gzip's, ISO 3309) continued from `crc`: zlib's since Node 20.15, else a table in JS. */
const crc32 = (data: Buffer, crc: number): number => ((zlib as {crc32?: (data: Buffer, crc: number) => number}).crc32 ?? tableCrc32)(data, crc);

let table: Int32Array | undefined;
function tableCrc32(data: Buffer, crc: number): number {
  if (!table) {
    table = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c;
    }
  }
  let c = ~crc;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * A gzip compressor stage at `level` that uses several cores, as pigz does: the input is
 * cut into GZIP_BLOCK_BYTES blocks, each deflated on libuv's thread pool with the 32 KiB
 * before it as its dictionary and ended by a sync flush (an empty stored block, so blocks
 * join on a byte boundary), the last one finished; the blocks are written in order between
 * one gzip header and a trailer of the CRC-32 (computed here, in order) and the length.
 * One gzip member, one deflate stream: every gzip reader reads it. The bytes depend only
 * on the input and the level, so equal layers give equal blobs (and digests).
 */
export function createGzipCompressor(level: number): Transform {
  const limit = inFlight();
  let parts: Buffer[] = [];
  let size = 0;
  let total = 0;
  let crc = 0;
  let dictionary: Buffer | undefined;
  const queue: Promise<Buffer>[] = [];
  const cut = (finish: boolean) => {
    const block = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
    // Before the deflate call, and never of an empty block: Node 20.20's zlib.crc32 answers
    // 0 for an empty buffer that was just handed to deflateRaw.
    if (block.length > 0) crc = crc32(block, crc);
    const compressed = deflateRaw(block, {level, finishFlush: finish ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH, ...(dictionary ? {dictionary} : {})});
    compressed.catch(() => {}); // awaited in order below; a failure is reported there
    queue.push(compressed);
    total += block.length;
    dictionary = block.length >= WINDOW ? block.subarray(block.length - WINDOW) : block;
    parts = [];
    size = 0;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      if (total === 0 && size === 0 && queue.length === 0) this.push(HEADER);
      void (async () => {
        for (let at = 0; at < chunk.length;) {
          const take = Math.min(GZIP_BLOCK_BYTES - size, chunk.length - at);
          parts.push(at === 0 && take === chunk.length ? chunk : chunk.subarray(at, at + take));
          size += take;
          at += take;
          if (size === GZIP_BLOCK_BYTES) {
            cut(false);
            if (queue.length >= limit) this.push(await queue.shift()!);
          }
        }
      })().then(() => done(), err => done(err as Error));
    },
    flush(done: TransformCallback) {
      void (async () => {
        if (total === 0 && size === 0 && queue.length === 0) this.push(HEADER);
        cut(true); // the rest, maybe empty: the final block
        while (queue.length > 0) this.push(await queue.shift()!);
        const trailer = Buffer.alloc(8);
        trailer.writeUInt32LE(crc >>> 0, 0);
        trailer.writeUInt32LE(total % 2 ** 32, 4);
        this.push(trailer);
      })().then(() => done(), err => done(err as Error));
    },
  });
}
