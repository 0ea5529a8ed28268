import {Duplex, PassThrough} from 'node:stream';
import {createGzipCompressor} from './gzip.js';
import {createZstdCompressor} from './zstd.js';

/** The compressions strata writes (and reads; decompress.ts reads xz and bzip2 too). */
export type Compression = 'gzip' | 'zstd' | 'none';

/** gzip level 6 (zlib's default) and zstd level 3 (zstd's default): fixed, so output repeats byte for byte. */
const GZIP_LEVEL = 6;
const ZSTD_LEVEL = 3;

/**
 * A compressing stage for a pipeline. gzip through zlib in fixed 1 MiB blocks deflated on
 * several cores (gzip.ts; no name or time in the header); zstd through libzstd (zstd.ts)
 * in frames of fixed size. Either way equal input gives equal output.
 */
export function createCompressor(compression: Compression): Duplex {
  if (compression === 'none') return new PassThrough();
  if (compression === 'gzip') return createGzipCompressor(GZIP_LEVEL);
  return createZstdCompressor(ZSTD_LEVEL);
}
