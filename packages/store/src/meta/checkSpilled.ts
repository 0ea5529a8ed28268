import * as fs from 'node:fs';
import {type Digest, hashBytes} from '../objects/digest.js';
import type {Store} from '../objects/Store.js';
import {digestOf} from '../index/keys.js';
import {eachDerived} from './sweepDerived.js';

/** A spilled file (`objects/small/<2>/<62>`) whose bytes are not the blob it is named after. */
export interface DamagedSpill {
  readonly blob: Digest;
  readonly file: string;
  readonly why: string;
}

/**
 * Re-hashes every spilled file, for verify: overlayfs serves a spilled file's bytes as the
 * file's content in every mount of every image that redirects to it, so damage there is
 * damage the mount shows. A spilled file is named after its blob, so its bytes must hash
 * to that name. Files are at most 16 KiB (inline blobs): each is read whole.
 */
export function findDamagedSpills(store: Store): DamagedSpill[] {
  const damaged: DamagedSpill[] = [];
  eachDerived(store, (kind, file, key) => {
    if (kind !== 'smallFile') return;
    const blob = digestOf(key, 'blob')!;
    let data: Buffer;
    try {
      data = fs.readFileSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // gc removed it meanwhile
      damaged.push({blob, file, why: `it cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`});
      return;
    }
    if (hashBytes(data) !== blob) damaged.push({blob, file, why: 'its bytes do not hash to its name'});
  });
  return damaged;
}

/**
 * Removes damaged spilled files and every metadata image whose tree reaches one of their
 * blobs (`reaches(tree, blobKeys)`), so that the next mount of those trees builds the image
 * again and spills the blob again from its (checked) index bytes. A container mounted now
 * keeps its image (the mount holds the file) and opens the removed file by name: it gets
 * an error for that one file, never the damaged bytes, until it is mounted again.
 */
export function removeDamagedSpills(store: Store, damaged: readonly DamagedSpill[], reaches: (tree: Digest) => boolean): {images: number} {
  let images = 0;
  for (const d of damaged) fs.rmSync(d.file, {force: true});
  eachDerived(store, (kind, file, key) => {
    if (kind !== 'metaImage' || !reaches(digestOf(key, 'tree')!)) return;
    fs.rmSync(file, {force: true});
    images++;
  });
  return {images};
}
