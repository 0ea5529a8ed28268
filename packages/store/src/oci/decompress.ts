import {spawn} from 'node:child_process';
import {PassThrough, Readable} from 'node:stream';
import {createGunzip} from 'node:zlib';
import {StoreError} from '../errors.js';
import type {Compression} from './compress.js';
import {createZstdDecompressor} from './zstd.js';

/** The compressions strata reads: those it writes, and xz and bzip2. */
export type ReadCompression = Compression | 'xz' | 'bzip2';

/**
 * Guesses a stream's compression from its first bytes: gzip 1f 8b, zstd 28 b5 2f fd,
 * xz fd 37 7a 58 5a 00, bzip2 "BZh" and a block size digit. Anything else is read as plain.
 */
export function sniffCompression(head: Buffer): ReadCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32BE(0) === 0x28b52ffd) return 'zstd';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 4 && head.subarray(0, 3).toString('latin1') === 'BZh' && head[3]! >= 0x31 && head[3]! <= 0x39) return 'bzip2';
  return 'none';
}

/** The programs that undo the compressions Node has no library for. */
const PROGRAMS = {xz: ['xz', '-dc'], bzip2: ['bzip2', '-dc']} as const;

/**
 * zlib's output buffer for gunzip: at its default 16 KiB a 34 MiB layer comes back to the
 * main thread 2,100 times; at 256 KiB gunzip took a third less CPU (and 1 MiB no less).
 */
const GUNZIP_CHUNK = 256 * 1024;

/**
 * Wraps a compressed stream in its decompressor: gzip through zlib, zstd through libzstd
 * (zstd.ts), xz and bzip2 through the `xz` and `bzip2` programs (docker load reads both;
 * Node has neither). Errors of the input reach the output; a missing program or a failed
 * decompression is BAD_ARCHIVE naming the compression.
 */
export function decompress(input: Readable, compression: ReadCompression): Readable {
  if (compression === 'none') return input;
  if (compression === 'gzip' || compression === 'zstd') {
    const stage = compression === 'gzip' ? createGunzip({chunkSize: GUNZIP_CHUNK}) : createZstdDecompressor();
    input.on('error', err => stage.destroy(err));
    return input.pipe(stage);
  }
  const [program, ...args] = PROGRAMS[compression];
  const out = new PassThrough();
  const child = spawn(program, args, {stdio: ['pipe', 'pipe', 'ignore']});
  child.on('error', err => out.destroy(new StoreError('BAD_ARCHIVE', `the data is ${compression}-compressed and the ${program} program is not installed (Debian: ${program === 'xz' ? 'xz-utils' : 'bzip2'})`, {cause: err})));
  child.on('close', code => { if (code !== 0 && code !== null) out.destroy(new StoreError('BAD_ARCHIVE', `${program} could not decompress the data (exit ${code}): it is truncated or corrupt`)); });
  input.on('error', err => out.destroy(err));
  child.stdin.on('error', () => {}); // the program exiting early surfaces through 'close'
  // A reader that stops early (an import that failed) must not leave the program blocked on a full pipe.
  out.on('close', () => { if (child.exitCode === null) child.kill(); });
  input.pipe(child.stdin);
  child.stdout.pipe(out);
  return out;
}

/** Reads the first chunk to learn the compression, then gives the whole stream back (and whether it is empty). */
export async function sniffStream(input: Readable): Promise<[ReadCompression, Readable, boolean]> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await it.next();
  const head = first.done ? Buffer.alloc(0) : first.value;
  const rest = Readable.from((async function* () {
    if (head.length > 0) yield head;
    for (;;) {
      const n = await it.next();
      if (n.done) return;
      yield n.value;
    }
  })(), {objectMode: false});
  return [sniffCompression(head), rest, head.length === 0];
}

/** A stream of plain bytes from a possibly compressed one (compression sniffed). */
export async function openCompressed(input: Readable): Promise<Readable> {
  const [compression, stream] = await sniffStream(input);
  return decompress(stream, compression);
}
