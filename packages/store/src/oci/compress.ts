import {Duplex, PassThrough} from 'node:stream';
import {createGzip} from 'node:zlib';
import {createZstdCompressor} from './zstd.js';

/** The compressions strata writes (and reads; decompress.ts reads xz and bzip2 too). */
export type Compression = 'gzip' | 'zstd' | 'none';

/** gzip level 6 (zlib's default) and zstd level 3 (zstd's default): fixed, so output repeats byte for byte. */
const GZIP_LEVEL = 6;
const ZSTD_LEVEL = 3;
/**
 * zlib's output buffer. Node's gzip stream goes back to the main thread each time the
 * buffer fills; at zlib's default 16 KiB a 20 MiB layer takes 1,300 round trips, and any
 * that waits on a busy main thread (the tar being written) leaves the compressing thread
 * idle: 1 MiB made a 34 MiB layer's gzip 20% faster. deflate's output does not depend on
 * how it is buffered, so the bytes are the same.
 */
const GZIP_CHUNK = 1024 * 1024;

/**
 * A compressing stage for a pipeline. gzip through zlib (its header carries no time or
 * name, so equal input gives equal output); zstd through libzstd (zstd.ts) in frames of
 * fixed size, so equal input gives equal output there too.
 */
export function createCompressor(compression: Compression): Duplex {
  if (compression === 'none') return new PassThrough();
  if (compression === 'gzip') return createGzip({level: GZIP_LEVEL, chunkSize: GZIP_CHUNK});
  return createZstdCompressor(ZSTD_LEVEL);
}
