import {spawn} from 'node:child_process';
import {Duplex, PassThrough, type Readable} from 'node:stream';
import {createGunzip, createGzip} from 'node:zlib';
import {StoreError} from '../errors.js';

export type Compression = 'gzip' | 'zstd' | 'none';

/** Guesses a stream's compression from its first bytes (gzip 1f 8b, zstd 28 b5 2f fd). */
export function sniffCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32BE(0) === 0x28b52ffd) return 'zstd';
  return 'none';
}

/** Wraps a compressed stream in its decompressor; zstd needs the `zstd` program (Node 20's zlib has none). */
export function decompress(input: Readable, compression: Compression): Readable {
  if (compression === 'none') return input;
  if (compression === 'gzip') {
    const gunzip = createGunzip();
    input.on('error', err => gunzip.destroy(err));
    return input.pipe(gunzip);
  }
  const out = new PassThrough();
  const child = spawn('zstd', ['-dc'], {stdio: ['pipe', 'pipe', 'ignore']});
  child.on('error', err => out.destroy(new StoreError('BAD_ARCHIVE', 'the archive is zstd-compressed and the zstd program is not installed', {cause: err})));
  child.on('close', code => { if (code !== 0 && code !== null) out.destroy(new StoreError('BAD_ARCHIVE', `zstd could not decompress the archive (exit ${code})`)); });
  input.on('error', err => out.destroy(err));
  child.stdin.on('error', () => {}); // zstd exiting early surfaces through 'close'
  input.pipe(child.stdin);
  child.stdout.pipe(out);
  return out;
}

/** gzip level 6 (zlib's default) and zstd level 3 (zstd's default): fixed, so output repeats byte for byte. */
const GZIP_LEVEL = 6;
const ZSTD_LEVEL = 3;

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
