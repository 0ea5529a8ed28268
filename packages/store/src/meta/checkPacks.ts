import * as fs from 'node:fs';
import type {Digest} from '../objects/digest.js';
import type {Store} from '../objects/Store.js';
import {blobListPath, loadPackIndex, packPath, packProblem, readPackList} from './packs.js';
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
 * blob's bytes, a name, an inode) shows, and so does its list's (the pack's head names it).
 */
export function findDamagedPacks(store: Store): DamagedPack[] {
  const damaged: DamagedPack[] = [];
  const index = loadPackIndex(store);
  // A layer's unchecked pack is served by no mount: its first build checks it (claimPack).
  for (const pack of index.packs.filter(p => !index.unchecked.has(p))) {
    const file = packPath(store, pack);
    let why: string | undefined;
    try {
      why = packProblem(pack, file, blobListPath(store, pack), false);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // gc removed it meanwhile
      why = `it cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    }
    if (why) damaged.push({pack, file, why});
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
