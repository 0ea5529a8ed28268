import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type {Digest} from '../objects/digest.js';
import {mark} from './gc.js';
import {edgesOf, loadGraph} from './graph.js';
import {isLeaseAlive, isProcessAlive, listLeases} from './leases.js';
import type {Store} from '../objects/Store.js';
import type {IndexOp} from '../index/Index.js';
import {PREFIX, blobKey, blobReposKey, containerKey, flatKey, imageKey, imageSourceKey, layerKey, leaseKey, treeKey} from '../index/keys.js';
import {type DerivedKind, sweepDerived} from '../meta/sweepDerived.js';

/** What gc removes, by kind. */
export type GcKind = 'blob' | 'tree' | 'layer' | 'image' | 'flat' | 'registry' | 'lease' | 'orphanFile' | 'tmpFile' | 'containerDir' | DerivedKind;

export interface GcReport {
  readonly dryRun: boolean;
  /** Objects removed (or, with dryRun, that would be): index entries and files. */
  readonly objects: number;
  /** Bytes freed: blob content, encoded trees and records, orphan and temporary files. */
  readonly bytes: number;
  readonly byKind: Record<GcKind, {count: number; bytes: number}>;
  /** Index keys that were roots: tags' and containers' images, pins, live leases. */
  readonly roots: number;
  /** Objects kept (index entries of content: blobs, trees, layers, images, flats). */
  readonly kept: number;
}

export interface GcOptions {
  readonly dryRun?: boolean;
}

const KINDS: GcKind[] = ['blob', 'tree', 'layer', 'image', 'flat', 'registry', 'lease', 'orphanFile', 'tmpFile', 'containerDir', 'metaImage', 'smallFile'];

/**
 * Mark and sweep. Roots: the images of tags and containers, pinned images and layers,
 * and the keys of live leases. The mark (gc.ts) follows images -> layers (and their
 * flattened stacks) -> trees -> blobs; the sweep deletes every other content entry of the
 * index in ONE atomic, fsynced batch, then unlinks the object files of deleted blobs, then
 * object files that no entry names (left by a crash between rename and index), temporary
 * files of dead processes, writable-layer directories of containers with no record, and
 * derived files (metadata images, spilled small blobs) of trees and blobs no longer live.
 *
 * Crash safety: the index changes all at once or not at all, so no kill leaves a kept
 * object naming a deleted one; files go only after the index stopped naming them, and a
 * file a kill leaves behind is an orphan the next gc removes.
 * Cost: one sequential scan per key prefix, a mark linear in what is live, a walk of
 * objects/ and tmp/.
 */
export async function collectGarbage(store: Store, options: GcOptions = {}): Promise<GcReport> {
  const dryRun = options.dryRun ?? false;
  const byKind = Object.fromEntries(KINDS.map(k => [k, {count: 0, bytes: 0}])) as GcReport['byKind'];
  const count = (kind: GcKind, bytes: number) => { byKind[kind].count++; byKind[kind].bytes += bytes; };

  const g = await loadGraph(store);
  const leases = await listLeases(store);
  const liveLeases = leases.filter(l => isLeaseAlive(l));

  const roots: string[] = [];
  for (const image of g.tags.values()) roots.push(imageKey(image));
  for (const c of g.containers.values()) roots.push(imageKey(c.image), containerKey(c.id));
  roots.push(...g.pins);
  for (const l of liveLeases) roots.push(...l.keys);
  const live = mark(roots, edgesOf(g));

  const dels: IndexOp[] = [];
  const doomedFiles: Digest[] = [];
  const liveFiles = new Set<string>();
  let kept = 0;
  // The sweep reads the graph loaded for the mark, not the index again.
  const sweep = (key: string, kind: GcKind, bytes: number): boolean => {
    if (live.has(key)) {
      kept++;
      return false;
    }
    count(kind, bytes);
    dels.push({type: 'del', key});
    return true;
  };
  for (const [d, info] of g.blobs) {
    if (sweep(blobKey(d), 'blob', info.size)) {
      if (info.file) doomedFiles.push(d);
    } else if (info.file) {
      liveFiles.add(d.slice(3));
    }
  }
  for (const [d, n] of g.treeBytes) sweep(treeKey(d), 'tree', n);
  for (const d of g.layers) sweep(layerKey(d), 'layer', g.recordBytes.get(layerKey(d)) ?? 0);
  for (const d of g.images.keys()) sweep(imageKey(d), 'image', g.recordBytes.get(imageKey(d)) ?? 0);
  for (const d of g.flats.keys()) sweep(flatKey(d), 'flat', g.recordBytes.get(flatKey(d)) ?? 0);
  // Registry metadata is about a layer, image or blob and goes with it; it keeps nothing alive.
  const metaDel = (key: string) => { count('registry', g.recordBytes.get(key) ?? 0); dels.push({type: 'del', key}); };
  const keptConfigs = new Set<string>();
  for (const [d, src] of g.sources) {
    if (live.has(imageSourceKey(d))) keptConfigs.add(src.config);
    else metaDel(imageSourceKey(d));
  }
  const keptShas = new Set<string>();
  for (const [key, layer] of g.layerMeta) {
    if (!live.has(layerKey(layer))) metaDel(key);
    else if (key.startsWith(PREFIX.blobLayer)) keptShas.add(key.slice(PREFIX.blobLayer.length));
  }
  for (const sha of g.blobRepos) if (!keptShas.has(sha) && !keptConfigs.has(sha)) metaDel(blobReposKey(sha));
  for (const l of leases) {
    if (liveLeases.includes(l)) continue;
    count('lease', 0);
    dels.push({type: 'del', key: leaseKey(l.id)});
  }
  // Through the store's index, so its memory of what exists forgets the deleted keys too.
  if (!dryRun && dels.length > 0) await store.index.commit(dels);

  if (!dryRun) for (const d of doomedFiles) await fs.rm(store.objectPath(d), {force: true});
  await sweepOrphanFiles(store, liveFiles, new Set(doomedFiles.map(d => d.slice(3))), dryRun, count);
  await sweepTmp(store, dryRun, count);
  await sweepContainerDirs(store, live, dryRun, count);
  // Metadata images and spilled small files of trees and blobs that are gone: derived, rebuilt on use.
  sweepDerived(store, live, dryRun, count);

  const objects = KINDS.reduce((n, k) => n + byKind[k].count, 0);
  const bytes = KINDS.reduce((n, k) => n + byKind[k].bytes, 0);
  return {dryRun, objects, bytes, byKind, roots: new Set(roots).size, kept};
}

/** Object files whose digest the index does not name: a crash came between rename and index write. */
async function sweepOrphanFiles(store: Store, liveFiles: Set<string>, doomed: Set<string>, dryRun: boolean, count: (k: GcKind, b: number) => void): Promise<void> {
  const base = path.join(store.dir, 'objects', 'b3');
  for (const fan of await readdirOrEmpty(base)) {
    const dir = path.join(base, fan);
    for (const name of await readdirOrEmpty(dir)) {
      const hex = fan + name;
      if (liveFiles.has(hex) || doomed.has(hex)) continue; // doomed ones were counted as blobs
      const file = path.join(dir, name);
      const st = await fs.lstat(file).catch(() => undefined);
      if (!st?.isFile()) continue;
      count('orphanFile', st.size);
      if (!dryRun) await fs.rm(file, {force: true});
    }
  }
}

/** Temporary files are named `<label>-<pid>-<random>`; those of processes that ended are stale. */
async function sweepTmp(store: Store, dryRun: boolean, count: (k: GcKind, b: number) => void): Promise<void> {
  const dir = path.join(store.dir, 'tmp');
  for (const name of await readdirOrEmpty(dir)) {
    const pid = Number(/-(\d+)-[0-9a-f]+$/.exec(name)?.[1]);
    if (isProcessAlive(pid)) continue;
    const file = path.join(dir, name);
    const st = await fs.lstat(file).catch(() => undefined);
    if (!st) continue;
    count('tmpFile', st.isFile() ? st.size : 0);
    if (!dryRun) await fs.rm(file, {recursive: true, force: true});
  }
}

/** A container directory with no record: a kill came between removing the record and the files. */
async function sweepContainerDirs(store: Store, live: Set<string>, dryRun: boolean, count: (k: GcKind, b: number) => void): Promise<void> {
  const dir = path.join(store.dir, 'containers');
  // A kernel mount under a container directory is left alone: deleting through it would
  // reach into the overlay (and the metadata image's read-only mount) rather than unlink.
  const mounts = (await fs.readFile('/proc/self/mountinfo', 'utf8').catch(() => '')).split('\n').map(l => l.split(' ')[4] ?? '');
  const real = await fs.realpath(dir).catch(() => dir);
  for (const id of await readdirOrEmpty(dir)) {
    if (live.has(containerKey(id))) continue;
    if (mounts.some(m => m.startsWith(`${path.join(real, id)}/`))) continue;
    count('containerDir', 0);
    if (!dryRun) await fs.rm(path.join(dir, id), {recursive: true, force: true});
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
