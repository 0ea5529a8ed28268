import {Duplex, PassThrough} from 'node:stream';
import {createGzip} from 'node:zlib';
import type {Compression} from './importTar.js';
import {createZstdCompressor} from './zstd.js';

/** gzip level 6 (zlib's default) and zstd level 3 (zstd's default): fixed, so output repeats byte for byte. */
const GZIP_LEVEL = 6;
const ZSTD_LEVEL = 3;

/** The compressions strata writes and reads, for option parsing. */
export const COMPRESSIONS: readonly Compression[] = ['gzip', 'zstd', 'none'];

/**
 * A compressing stage for a pipeline. gzip through zlib (its header carries no time or
 * name, so equal input gives equal output); zstd through libzstd (zstd.ts) in frames of
 * fixed size, so equal input gives equal output there too.
 */
export function createCompressor(compression: Compression): Duplex {
  if (compression === 'none') return new PassThrough();
  if (compression === 'gzip') return createGzip({level: GZIP_LEVEL});
  return createZstdCompressor(ZSTD_LEVEL);
}
