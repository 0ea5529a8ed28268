import * as fs from 'node:fs';
import * as path from 'node:path';
import {readdirOrEmpty} from '../makeDirs.js';
import type {Digest} from '../objects/digest.js';
import type {Store} from '../objects/Store.js';
import type {KeyLookup} from '../maintenance/keySet.js';
import {blobKey, treeKey} from '../index/keys.js';

/** Derived files, by kind: metadata images (`meta/`) and spilled inline blobs (`objects/small/`). */
export type DerivedKind = 'metaImage' | 'smallFile';

/**
 * Removes derived files nothing live needs, for gc: a metadata image whose tree key
 * (`t:<digest>`) is not in `live`, a spilled file whose blob key (`b:<digest>`) is not.
 * An image kept is one whose tree is live, so every blob it redirects to is live too,
 * and so is every spilled file it needs. All of it is rebuilt on demand (ensureMetaImage).
 * With `dryRun`, only counts. Files with other names are left alone.
 */
export function sweepDerived(store: Store, live: KeyLookup, dryRun: boolean, count: (kind: DerivedKind, bytes: number) => void): void {
  eachDerived(store, (kind, file, key, bytes) => {
    if (live.has(key)) return;
    count(kind, bytes);
    if (!dryRun) fs.rmSync(file, {force: true});
  });
}

/** Derived files on disk, by kind: how many and their bytes (for df). */
export function derivedUsage(store: Store): Record<DerivedKind, {count: number; bytes: number}> {
  const usage = {metaImage: {count: 0, bytes: 0}, smallFile: {count: 0, bytes: 0}};
  eachDerived(store, (kind, _file, _key, bytes) => {
    usage[kind].count++;
    usage[kind].bytes += bytes;
  });
  return usage;
}

/** Every derived file with the index key it derives from (`t:<digest>` for an image, `b:<digest>` for a spilled blob). */
export function eachDerived(store: Store, fn: (kind: DerivedKind, file: string, key: string, bytes: number) => void): void {
  const visit = (kind: DerivedKind, file: string, key: string) => {
    const st = fs.lstatSync(file, {throwIfNoEntry: false});
    if (st?.isFile()) fn(kind, file, key, st.size);
  };
  const metaDir = path.join(store.dir, 'meta');
  for (const name of readdirOrEmpty(metaDir)) {
    const m = /^([0-9a-f]{64})\.erofs$/.exec(name);
    if (m) visit('metaImage', path.join(metaDir, name), treeKey(`b3:${m[1]}` as Digest));
  }
  const small = path.join(store.dir, 'objects', 'small');
  for (const fan of readdirOrEmpty(small)) {
    for (const name of readdirOrEmpty(path.join(small, fan))) visit('smallFile', path.join(small, fan, name), blobKey(`b3:${fan}${name}` as Digest));
  }
}
