import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import {readdirOrEmpty} from '../makeDirs.js';
import type {Digest} from '../objects/digest.js';
import type {Store} from '../objects/Store.js';
import type {KeyLookup} from '../maintenance/keySet.js';
import {treeKey} from '../index/keys.js';
import {packDir, readPackList} from './packs.js';
import {readLayerPack} from './layerPacks.js';

/**
 * Derived files, by kind: metadata images (`meta/`), small-blob packs (`packs/`, with their
 * blob lists), and the spilled files of builds made before packs (`objects/small/`).
 */
export type DerivedKind = 'metaImage' | 'pack' | 'smallFile';

/**
 * Removes derived files nothing live needs, for gc:
 * - a metadata image whose tree key (`t:<digest>`) is not in `live`, or that has no pack
 *   list (built before packs: the next mount builds it again);
 * - a layer pack's marker (`packs/<layer>.layer`) whose layer's tree is not in `live`;
 * - a pack that no kept image and no kept marker names, unless it was written or chosen by a build since
 *   `since` (the start of the oldest other process at work: a build names its packs in an
 *   image only after touching them, so a pack about to be named is not taken);
 * - the spilled files of builds made before packs, once no container of the store is
 *   mounted (a container mounted then reads through them).
 * A kept image's packs are kept, so every redirect of every kept image resolves. All of it
 * is rebuilt on demand (ensureMetaImage). With `dryRun`, only counts. Files with other
 * names are left alone.
 * What goes is chosen and counted at once; the files are removed on libuv's threads, a pack's
 * files in their order and the packs side by side (an unlink of a pack of megabytes waits for
 * the disk to discard its blocks: ~5 ms each, in turn, on the main thread before).
 */
export async function sweepDerived(store: Store, live: KeyLookup, since: number, dryRun: boolean, count: (kind: DerivedKind, bytes: number) => void): Promise<void> {
  const removals: string[][] = [];
  const remove = (...files: string[]) => { if (!dryRun) removals.push(files); };
  const needed = new Set<string>();
  for (const {file, tree, bytes} of metaImages(store)) {
    let packs: Digest[] | undefined;
    try {
      packs = live.has(treeKey(tree)) ? readPackList(file) : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // replaced or removed meanwhile
      throw err;
    }
    if (packs) {
      for (const p of packs) needed.add(p.slice(3));
      continue;
    }
    count('metaImage', bytes);
    remove(file);
  }
  // A layer pack is kept while its layer's tree is live (or its marker is new: a layer
  // being stored is leased only once its record is written).
  for (const {file, layer, mtimeMs} of layerMarkers(store)) {
    if (live.has(treeKey(layer)) || mtimeMs >= since) {
      const pack = readLayerPack(file);
      if (pack) needed.add(pack.slice(3));
      continue;
    }
    remove(file);
  }
  for (const pack of packFiles(store)) {
    // A layer's unchecked pack that a build has checked and placed meanwhile is redundant.
    if (pack.erofs && pack.unchecked) remove(pack.unchecked);
    if (needed.has(pack.hex) || (pack.mtimeMs ?? 0) >= since) continue;
    count('pack', pack.bytes);
    // The pack first: a list without its pack is never read, a pack without its list would be.
    remove(...[pack.erofs, pack.unchecked, pack.blobs].filter(f => f !== undefined));
  }
  const spilled = spilledFiles(store);
  if (spilled.length > 0 && !anyContainerMounted(store)) {
    for (const {bytes} of spilled) count('smallFile', bytes);
    if (!dryRun) fs.rmSync(path.join(store.dir, 'objects', 'small'), {recursive: true, force: true});
  }
  // At most UNLINKS_AT_ONCE removals at a time: an unlink of a pack waits for the disk to
  // discard its blocks, and one on each of libuv's four threads held back gc's delete batch,
  // whose write and fdatasync need one too (docs/benchmarks.md, "gc, fifth round").
  let next = 0;
  const worker = async () => {
    while (next < removals.length) for (const f of removals[next++]!) await unlinkIfThere(f);
  };
  await Promise.all(Array.from({length: Math.min(UNLINKS_AT_ONCE, removals.length)}, worker));
}

/** Removals of derived files under way at once: half of libuv's default four threads. */
const UNLINKS_AT_ONCE = 2;

async function unlinkIfThere(file: string): Promise<void> {
  await fsp.unlink(file).catch(err => { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; });
}

/** Derived files on disk, by kind: how many and their bytes (for df). */
export function derivedUsage(store: Store): Record<DerivedKind, {count: number; bytes: number}> {
  const usage = {metaImage: {count: 0, bytes: 0}, pack: {count: 0, bytes: 0}, smallFile: {count: 0, bytes: 0}};
  const add = (kind: DerivedKind, bytes: number) => {
    usage[kind].count++;
    usage[kind].bytes += bytes;
  };
  for (const i of metaImages(store)) add('metaImage', i.bytes);
  for (const p of packFiles(store)) if (p.erofs || p.unchecked) add('pack', p.bytes);
  for (const f of spilledFiles(store)) add('smallFile', f.bytes);
  return usage;
}

/** `packs/<64 hex>.layer`: the markers of layer packs, by layer. */
function layerMarkers(store: Store): {file: string; layer: Digest; mtimeMs: number}[] {
  const out = [];
  const dir = packDir(store);
  for (const name of readdirOrEmpty(dir)) {
    const m = /^([0-9a-f]{64})\.layer$/.exec(name);
    const st = m ? fs.lstatSync(path.join(dir, name), {throwIfNoEntry: false}) : undefined;
    if (st?.isFile()) out.push({file: path.join(dir, name), layer: `b3:${m![1]}` as Digest, mtimeMs: st.mtimeMs});
  }
  return out;
}

/** `meta/<64 hex>.erofs`: every metadata image with its tree. */
export function metaImages(store: Store): {file: string; tree: Digest; bytes: number}[] {
  const out = [];
  const dir = path.join(store.dir, 'meta');
  for (const name of readdirOrEmpty(dir)) {
    const m = /^([0-9a-f]{64})\.erofs$/.exec(name);
    const st = m ? fs.lstatSync(path.join(dir, name), {throwIfNoEntry: false}) : undefined;
    if (st?.isFile()) out.push({file: path.join(dir, name), tree: `b3:${m![1]}` as Digest, bytes: st.size});
  }
  return out;
}

/**
 * The packs on disk by name: the pack file (checked, `.erofs`, or a layer's `.unchecked`) and
 * its blob list where they exist, their bytes together, and the pack's mtime.
 */
function packFiles(store: Store): {hex: string; erofs?: string; unchecked?: string; blobs?: string; bytes: number; mtimeMs?: number}[] {
  const byHex = new Map<string, {hex: string; erofs?: string; unchecked?: string; blobs?: string; bytes: number; mtimeMs?: number}>();
  const dir = packDir(store);
  for (const name of readdirOrEmpty(dir)) {
    const m = /^([0-9a-f]{64})\.(erofs|unchecked|blobs)$/.exec(name);
    const st = m ? fs.lstatSync(path.join(dir, name), {throwIfNoEntry: false}) : undefined;
    if (!st?.isFile()) continue;
    let p = byHex.get(m![1]!);
    if (!p) byHex.set(m![1]!, p = {hex: m![1]!, bytes: 0});
    p.bytes += st.size;
    if (m![2] === 'erofs' || m![2] === 'unchecked') {
      p[m![2] as 'erofs' | 'unchecked'] = path.join(dir, name);
      p.mtimeMs = Math.max(p.mtimeMs ?? 0, st.mtimeMs);
    } else {
      p.blobs = path.join(dir, name);
      p.mtimeMs ??= st.mtimeMs;
    }
  }
  return [...byHex.values()];
}

/** `objects/small/<2>/<62>`: the spilled files of builds made before packs. */
function spilledFiles(store: Store): {file: string; bytes: number}[] {
  const out = [];
  const small = path.join(store.dir, 'objects', 'small');
  for (const fan of readdirOrEmpty(small)) {
    for (const name of readdirOrEmpty(path.join(small, fan))) {
      const file = path.join(small, fan, name);
      const st = fs.lstatSync(file, {throwIfNoEntry: false});
      if (st?.isFile()) out.push({file, bytes: st.size});
    }
  }
  return out;
}

/** Whether any mount is under the store's containers/ (every container mount has its metadata image's there). */
function anyContainerMounted(store: Store): boolean {
  let info: string;
  try {
    info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return true; // cannot tell: keep them
  }
  const containers = `${fs.realpathSync(store.dir)}/containers/`;
  return info.split('\n').some(l => (l.split(' ')[4] ?? '').startsWith(containers));
}
