import {createHash} from 'node:crypto';
import {Transform} from 'node:stream';
import {definedOnUse} from '../host/definedOnUse.js';

/** Counts and hashes the bytes that pass. */
export interface Sha256Tap extends Transform {
  readonly size: number;
  /** `sha256:<hex>` of the bytes that passed (once, at the end). */
  digest(): string;
}

const tapClass = definedOnUse(() => class Tap extends Transform implements Sha256Tap {
  private readonly hash = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err: null, data: Buffer) => void) {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }
  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
});

/** A new tap: counts and hashes the bytes that pass. */
export function sha256Tap(): Sha256Tap {
  return new (tapClass())();
}
