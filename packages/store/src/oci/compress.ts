import {spawn} from 'node:child_process';
import {Duplex, PassThrough} from 'node:stream';
import {createGzip} from 'node:zlib';
import {StoreError} from '../errors.js';
import type {Compression} from '../import/importTar.js';

/** gzip level 6 (zlib's default) and zstd level 3 (zstd's default): fixed, so output repeats byte for byte. */
const GZIP_LEVEL = 6;
const ZSTD_LEVEL = 3;

/** The compressions strata writes and reads, for option parsing. */
export const COMPRESSIONS: readonly Compression[] = ['gzip', 'zstd', 'none'];

/**
 * A compressing stage for a pipeline. gzip through zlib (its header carries no time or
 * name, so equal input gives equal output); zstd through the `zstd` program,
 * single-threaded, since Node 20's zlib has no zstd. A missing or failing zstd errors the
 * stream with BAD_ARCHIVE.
 */
export function createCompressor(compression: Compression): Duplex {
  if (compression === 'none') return new PassThrough();
  if (compression === 'gzip') return createGzip({level: GZIP_LEVEL});
  const child = spawn('zstd', ['-q', '-c', `-${ZSTD_LEVEL}`, '--single-thread'], {stdio: ['pipe', 'pipe', 'ignore']});
  const out = new PassThrough();
  child.stdout.pipe(out, {end: false});
  const duplex = Duplex.from({writable: child.stdin, readable: out});
  child.on('error', err => duplex.destroy(new StoreError('BAD_ARCHIVE', 'zstd compression needs the zstd program, which is not installed', {cause: err})));
  // End the output only once zstd has exited well, so a failure is never read as a short, valid stream.
  child.on('close', code => {
    if (code === 0) out.end();
    else duplex.destroy(new StoreError('BAD_ARCHIVE', `zstd failed to compress (exit ${code})`));
  });
  child.stdin.on('error', () => {}); // zstd exiting early surfaces through 'close'
  // A pipeline torn down early (the reader went away) must not leave zstd blocked on a full pipe.
  duplex.on('close', () => { if (child.exitCode === null) child.kill(); });
  return duplex;
}
