import {createReadStream} from 'node:fs';
import * as fs from 'node:fs/promises';
import {type Readable, Transform, type TransformCallback} from 'node:stream';
import {type Digest, createHasher, hashBytes} from './digest.js';
import {StoreError} from '../errors.js';
import {definedOnUse} from '../host/definedOnUse.js';

/**
 * Why stored bytes are refused: a blob is served only when it hashes to its name, so a
 * damaged object file is never passed on (nor re-hashed into a fresh, valid-looking
 * digest by an export or a commit). OBJECT_CORRUPT, which the CLI reports with exit 3.
 */
export function damagedBlob(d: Digest, why: string): StoreError {
  return new StoreError('OBJECT_CORRUPT', `blob ${d} is damaged: ${why}; "strata verify" says more`);
}

/** Throws OBJECT_CORRUPT unless `data` is blob `d` of `size` bytes. Returns `data`. */
export function checkBlobBytes(d: Digest, size: number, data: Buffer): Buffer {
  if (data.length !== size) throw damagedBlob(d, `it has ${data.length} bytes, the index says ${size}`);
  if (hashBytes(data) !== d) throw damagedBlob(d, 'its bytes do not hash to its name');
  return data;
}

/**
 * Passes a blob's bytes through while hashing them, and fails the stream (OBJECT_CORRUPT)
 * when they are more than the index says, or at the end when they are fewer or hash to
 * another digest. The last chunk is held back until the check passed, so a reader that
 * ignores the error still never gets a damaged blob whole. The bytes are read anyway, so
 * the check costs only the hashing.
 */
const verifyingStream = definedOnUse(() => class VerifyingStream extends Transform {
  private readonly hasher = createHasher();
  private seen = 0;
  private held: Buffer | undefined;
  constructor(private readonly digest: Digest, private readonly size: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.size) return done(damagedBlob(this.digest, `its object file is longer than the ${this.size} bytes the index says`));
    this.hasher.update(chunk);
    const out = this.held;
    this.held = chunk;
    done(null, out);
  }
  override _flush(done: TransformCallback): void {
    if (this.seen !== this.size) return done(damagedBlob(this.digest, `its object file has ${this.seen} bytes, the index says ${this.size}`));
    if (this.hasher.digest() !== this.digest) return done(damagedBlob(this.digest, 'its object file does not hash to its name'));
    done(null, this.held);
  }
});

/** An object file as a stream that fails (OBJECT_CORRUPT) rather than end on damaged bytes. */
export function openVerified(file: string, d: Digest, size: number): Readable {
  const source = createReadStream(file, {highWaterMark: 1024 * 1024});
  const check = new (verifyingStream())(d, size);
  source.on('error', err => check.destroy(err));
  check.on('close', () => source.destroy());
  return source.pipe(check);
}

/**
 * Copies an object file to `dest` (a reflink where the filesystem has them) and then
 * hashes the copy: what was written is what is checked. Damage removes `dest` and
 * throws OBJECT_CORRUPT.
 */
export async function copyVerified(file: string, d: Digest, size: number, dest: string | Buffer): Promise<void> {
  await fs.copyFile(file, dest, fs.constants.COPYFILE_FICLONE);
  try {
    await hashFile(dest, d, size);
  } catch (err) {
    await fs.rm(dest, {force: true});
    throw err;
  }
}

async function hashFile(file: string | Buffer, d: Digest, size: number): Promise<void> {
  const fh = await fs.open(file, 'r');
  try {
    const hasher = createHasher();
    const buf = Buffer.allocUnsafe(1024 * 1024);
    let total = 0;
    for (;;) {
      const {bytesRead} = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hasher.update(buf.subarray(0, bytesRead));
      total += bytesRead;
    }
    if (total !== size) throw damagedBlob(d, `its object file has ${total} bytes, the index says ${size}`);
    if (hasher.digest() !== d) throw damagedBlob(d, 'its object file does not hash to its name');
  } finally {
    await fh.close();
  }
}
