import * as fs from 'node:fs';
import {type Digest, createHasher} from '../objects/digest.js';
import type {Store} from '../objects/Store.js';
import {loadPackIndex, packPath, readPackList} from './packs.js';
import {metaImages} from './sweepDerived.js';

/** A small-blob pack whose bytes are not what it is named after. */
export interface DamagedPack {
  readonly pack: Digest;
  readonly file: string;
  readonly why: string;
}

/**
 * Re-hashes every small-blob pack, for verify: overlayfs serves a pack's files as the
 * content of small files in every mount of every image that needs it, so damage there is
 * damage a mount shows. A pack is named by the BLAKE3 of its bytes, so any change to it (a
 * blob's bytes, a name, an inode) shows.
 */
export function findDamagedPacks(store: Store): DamagedPack[] {
  const damaged: DamagedPack[] = [];
  for (const pack of loadPackIndex(store).packs) {
    const file = packPath(store, pack);
    const hasher = createHasher();
    const buf = Buffer.alloc(1 << 20);
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // gc removed it meanwhile
      damaged.push({pack, file, why: `it cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`});
      continue;
    }
    try {
      for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) hasher.update(buf.subarray(0, n));
    } catch (err) {
      damaged.push({pack, file, why: `it cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`});
      continue;
    } finally {
      fs.closeSync(fd);
    }
    if (hasher.digest() !== pack) damaged.push({pack, file, why: 'its bytes do not hash to its name'});
  }
  return damaged;
}

/**
 * Removes damaged packs and every metadata image that names one, so that the next mount of
 * those trees builds the image again and packs the blobs again from their (checked) index
 * bytes. A container mounted now keeps its mounts (the kernel holds the files) until it is
 * mounted again. Returns how many images went.
 */
export function removeDamagedPacks(store: Store, damaged: readonly DamagedPack[]): {images: number} {
  const bad = new Set<string>(damaged.map(d => d.pack));
  let images = 0;
  for (const {file} of metaImages(store)) {
    let packs;
    try {
      packs = readPackList(file);
    } catch {
      continue;
    }
    if (!packs?.some(p => bad.has(p))) continue;
    fs.rmSync(file, {force: true});
    images++;
  }
  for (const d of damaged) {
    fs.rmSync(d.file, {force: true});
    fs.rmSync(d.file.replace(/\.erofs$/, '.blobs'), {force: true});
  }
  return {images};
}
