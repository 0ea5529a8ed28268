import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {type Digest, createHasher, ensureHasher} from '../objects/digest.js';
import {importDirectory} from '../import/importDirectory.js';
import {LayerBuilder} from '../import/LayerBuilder.js';
import {Store} from '../objects/Store.js';
import type {Meta} from '../objects/tree.js';
import {StoreError} from '../errors.js';
import {addPin} from './pins.js';
import type {VerifyReport} from './verify.js';

/** What `rebuildIndex` found and kept. */
export interface RebuiltIndex {
  /** Object files whose bytes hash to their name: indexed again, kept by `layer`. */
  readonly blobs: number;
  /** Object files whose bytes do not: left unindexed, for gc. */
  readonly damagedFiles: number;
  /** The pinned layer that holds every recovered blob as `/<2 hex>/<62 hex>` (none when there were no blobs). */
  readonly layer?: Digest;
  /** Containers whose writable layer was saved as a pinned layer. */
  readonly containers: {readonly id: string; readonly layer: Digest}[];
  /** Containers whose writable layer could not be read as a layer, and why (the directory stays). */
  readonly unreadable: {readonly id: string; readonly why: string}[];
}

const FAN_META: Meta = {mode: 0o755, uid: 0, gid: 0, mtime: 0};
const BLOB_META: Meta = {mode: 0o444, uid: 0, gid: 0, mtime: 0};

/**
 * Describes a store whose index is gone (INDEX_MISSING) without changing anything: one
 * problem, naming what only the object files and container directories still hold.
 */
export async function missingIndexReport(storeDir: string): Promise<VerifyReport> {
  const files = await objectFiles(storeDir);
  const containers = await containerDirs(storeDir);
  return {
    checked: 0,
    problems: [{
      object: 'index', kind: 'missing', referencedBy: [],
      message: `the index is missing: ${files.length} object files and ${containers.length} container writable layers are named by nothing, and the tags, images, trees and small files it held are gone; "strata verify --repair" starts a new index and keeps what the files hold`,
    }],
    damagedImages: [],
    damagedContainers: containers.map(id => ({id})),
    repaired: false,
    remaining: 1,
  };
}

/**
 * Starts a new index for a store that lost its own, and keeps what the files still hold,
 * so that no gc takes it as garbage: every object file whose bytes hash to its name is
 * indexed again and named by one pinned layer (`/<2 hex>/<62 hex>`, as under objects/),
 * and every container's writable layer is imported as a pinned layer (its base image is
 * lost with the index). Importing the lost images again reuses those blobs. Tags, images,
 * trees, container records and blobs small enough to live inline were only in the index:
 * they cannot be recovered. Throws STORE_LOCKED.
 */
export async function rebuildIndex(storeDir: string): Promise<RebuiltIndex> {
  await ensureHasher();
  const store = await Store.open(storeDir, {newIndex: true});
  try {
    const builder = new LayerBuilder();
    const fans = new Set<string>();
    let blobs = 0, damagedFiles = 0;
    for (const {file, digest} of await objectFiles(store.dir)) {
      const read = await hashFile(file);
      if (read.digest !== digest) {
        damagedFiles++;
        continue;
      }
      await store.indexFileBlob({digest, size: read.size});
      const hex = digest.slice(3);
      if (!fans.has(hex.slice(0, 2))) builder.dir([hex.slice(0, 2)], FAN_META);
      fans.add(hex.slice(0, 2));
      builder.leaf([hex.slice(0, 2), hex.slice(2)], {kind: 'file', ...BLOB_META, size: read.size, blob: digest});
      blobs++;
    }
    let layer: Digest | undefined;
    if (blobs > 0) {
      const written = await builder.write(store);
      layer = written.root;
      await store.putLayer({id: layer, entries: written.entries, bytes: written.bytes, created: new Date().toISOString(), source: 'object files recovered by strata verify --repair'});
      await addPin(store, layer, 'layer');
    }
    const containers: {id: string; layer: Digest}[] = [];
    const unreadable: {id: string; why: string}[] = [];
    for (const id of await containerDirs(store.dir)) {
      try {
        const r = await importDirectory(store, store.upperDir(id), {upper: store.upper, source: `writable layer of container ${id}, recovered by strata verify --repair`});
        await addPin(store, r.layer.id, 'layer');
        containers.push({id, layer: r.layer.id});
      } catch (err) {
        if (!(err instanceof StoreError)) throw err;
        unreadable.push({id, why: err.message});
      }
    }
    return {blobs, damagedFiles, ...(layer ? {layer} : {}), containers, unreadable};
  } finally {
    await store.close();
  }
}

/** Every `objects/b3/<2 hex>/<62 hex>` file, with the digest its name gives. */
async function objectFiles(storeDir: string): Promise<{file: string; digest: Digest}[]> {
  const out: {file: string; digest: Digest}[] = [];
  const fan = path.join(storeDir, 'objects', 'b3');
  for (const sub of (await fs.readdir(fan).catch(() => [] as string[])).sort()) {
    if (!/^[0-9a-f]{2}$/.test(sub)) continue;
    for (const name of (await fs.readdir(path.join(fan, sub)).catch(() => [] as string[])).sort())
      if (/^[0-9a-f]{62}$/.test(name)) out.push({file: path.join(fan, sub, name), digest: `b3:${sub}${name}` as Digest});
  }
  return out;
}

/** Ids of the container directories that hold a writable layer (`containers/<id>/upper`). */
async function containerDirs(storeDir: string): Promise<string[]> {
  const root = path.join(storeDir, 'containers');
  const ids: string[] = [];
  for (const id of (await fs.readdir(root).catch(() => [] as string[])).sort()) {
    const st = await fs.lstat(path.join(root, id, 'upper')).catch(() => undefined);
    if (st?.isDirectory()) ids.push(id);
  }
  return ids;
}

async function hashFile(file: string): Promise<{digest: Digest; size: number}> {
  const hasher = createHasher();
  let size = 0;
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024);
    for (;;) {
      const {bytesRead} = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hasher.update(buf.subarray(0, bytesRead));
      size += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return {digest: hasher.digest(), size};
}
