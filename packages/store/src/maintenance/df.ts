import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type {Digest} from '../objects/digest.js';
import {mark} from './gc.js';
import {type IndexGraph, edgesOf, loadGraph} from './graph.js';
import {isLeaseAlive, listLeases} from './leases.js';
import type {Store} from '../objects/Store.js';
import {containerKey, digestOf, imageKey, leaseKey} from '../index/keys.js';
import {type DerivedKind, derivedUsage} from '../meta/sweepDerived.js';

/** Space one image takes. All figures are bytes of file content. */
export interface ImageUsage {
  readonly id: Digest;
  readonly tags: string[];
  /** Its files' bytes as if nothing were shared (every layer's files, duplicates counted). */
  readonly logical: number;
  /** Bytes of the distinct blobs it reaches. */
  readonly size: number;
  /** Of `size`, blobs another image reaches too. */
  readonly shared: number;
  /** Of `size`, blobs no other image reaches. */
  readonly unique: number;
  /** What `image rm` then `gc` would free: blobs no other root (image, container, pin, lease) keeps. */
  readonly reclaimable: number;
}

/** Space one container takes: its image's blobs (shared with the image) and its writable layer. */
export interface ContainerUsage {
  readonly id: string;
  readonly name?: string;
  readonly image: Digest;
  /** Bytes of its image's blobs, which it shares. */
  readonly shared: number;
  /** Bytes of the regular files in its writable layer. */
  readonly unique: number;
  /** What `rm` then `gc` would free: its writable layer, and blobs only it keeps. */
  readonly reclaimable: number;
}

export interface DiskUsage {
  /** Sum of every image's `logical`: what the images would take unshared. */
  readonly logical: number;
  /** Bytes of every blob in the store, each once. */
  readonly stored: number;
  /** Bytes of the distinct blobs that images reach. */
  readonly referenced: number;
  /** logical / referenced: how many times sharing shrinks the images (1 when there are none). */
  readonly ratio: number;
  /** Blob bytes no root reaches: what gc frees now. */
  readonly garbage: number;
  /** Encoded trees, each once: the cost of the directory structure. */
  readonly metadata: number;
  readonly blobs: number;
  readonly trees: number;
  /** Derived files (metadata images, small-blob packs, spilled files of earlier builds): rebuilt on use, so never counted as content. */
  readonly derived: Record<DerivedKind, {count: number; bytes: number}>;
  readonly images: ImageUsage[];
  readonly containers: ContainerUsage[];
}

/**
 * Space accounting from the index alone (one scan per key prefix); only containers'
 * writable layers are walked, which costs what a container changed. Every figure counts
 * file content (blob bytes): trees are reported apart as `metadata`.
 */
export async function diskUsage(store: Store): Promise<DiskUsage> {
  const g = await loadGraph(store);
  const leases = listLeases(store.dir);
  const edges = edgesOf(g);
  const blobsOf = (roots: string[]): Digest[] => {
    const out: Digest[] = [];
    for (const k of mark(roots, edges)) {
      const d = digestOf(k, 'blob');
      if (d && g.blobs.has(d)) out.push(d);
    }
    return out;
  };
  const sizeOf = (d: Digest) => g.blobs.get(d)!.size;
  const sum = (ds: Iterable<Digest>) => { let n = 0; for (const d of ds) n += sizeOf(d); return n; };

  // Which images reach each blob, and which roots keep it (an owner, or '*' for several).
  const imageBlobs = new Map<Digest, Digest[]>();
  const imageCount = new Map<Digest, number>();
  for (const id of g.images.keys()) {
    const blobs = blobsOf([imageKey(id)]);
    imageBlobs.set(id, blobs);
    for (const b of blobs) imageCount.set(b, (imageCount.get(b) ?? 0) + 1);
  }
  const owner = new Map<Digest, string>();
  const own = (group: string, blobs: Iterable<Digest>) => {
    for (const b of blobs) {
      const o = owner.get(b);
      if (o === undefined) owner.set(b, group);
      else if (o !== group) owner.set(b, '*');
    }
  };
  const rootedImages = new Set<Digest>([...g.tags.values()]);
  // Owners are named by the key of their root: an image, a container, a pinned layer, a lease.
  for (const p of g.pins) {
    const id = digestOf(p, 'image');
    if (id) rootedImages.add(id);
  }
  for (const id of rootedImages) own(imageKey(id), imageBlobs.get(id) ?? []);
  for (const c of g.containers.values()) own(containerKey(c.id), imageBlobs.get(c.image) ?? blobsOf([imageKey(c.image)]));
  for (const p of g.pins) if (digestOf(p, 'layer')) own(p, blobsOf([p]));
  for (const l of leases) if (l.id !== store.leaseId && isLeaseAlive(l)) own(leaseKey(l.id), blobsOf([...l.keys]));

  const images: ImageUsage[] = [];
  const tagsOf = new Map<Digest, string[]>();
  for (const [tag, id] of g.tags) tagsOf.set(id, [...(tagsOf.get(id) ?? []), tag]);
  const logicalOfTree = treeLogical(g);
  for (const [id, image] of g.images) {
    const blobs = imageBlobs.get(id)!;
    const unique = sum(blobs.filter(b => imageCount.get(b) === 1));
    const size = sum(blobs);
    const mine = rootedImages.has(id) ? imageKey(id) : undefined;
    images.push({
      id, tags: tagsOf.get(id) ?? [],
      logical: image.layers.reduce((n, l) => n + logicalOfTree(l), 0),
      size, shared: size - unique, unique,
      reclaimable: sum(blobs.filter(b => owner.get(b) === mine)),
    });
  }
  const containers: ContainerUsage[] = [];
  for (const c of g.containers.values()) {
    const blobs = imageBlobs.get(c.image) ?? [];
    const upper = await fileBytes(store.upperDir(c.id));
    containers.push({
      id: c.id, ...(c.name ? {name: c.name} : {}), image: c.image, shared: sum(blobs), unique: upper,
      reclaimable: upper + sum(blobs.filter(b => owner.get(b) === containerKey(c.id))),
    });
  }

  const referenced = sum(new Set([...imageBlobs.values()].flat()));
  const logical = images.reduce((n, i) => n + i.logical, 0);
  let stored = 0, garbage = 0, metadata = 0;
  for (const [d, info] of g.blobs) {
    stored += info.size;
    if (!owner.has(d)) garbage += info.size;
  }
  for (const n of g.treeBytes.values()) metadata += n;
  return {
    logical, stored, referenced, ratio: referenced === 0 ? 1 : logical / referenced, garbage, metadata,
    blobs: g.blobs.size, trees: g.trees.size, derived: derivedUsage(store), images, containers,
  };
}

/** File bytes under a tree, every subtree counted where it appears (memoised per tree). */
function treeLogical(g: IndexGraph): (tree: Digest) => number {
  const memo = new Map<Digest, number>();
  const of = (t: Digest): number => {
    const known = memo.get(t);
    if (known !== undefined) return known;
    let n = g.treeFileBytes.get(t) ?? 0;
    for (const r of g.trees.get(t) ?? []) {
      const sub = digestOf(r, 'tree');
      if (sub) n += of(sub);
    }
    memo.set(t, n);
    return n;
  };
  return of;
}

/** Bytes of the regular files under a directory (hardlinked files once); 0 when it is missing. */
async function fileBytes(dir: string): Promise<number> {
  let total = 0;
  const seen = new Set<string>();
  const walk = async (d: string): Promise<void> => {
    let names: string[];
    try {
      names = await fs.readdir(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const name of names) {
      const p = path.join(d, name);
      const st = await fs.lstat(p);
      if (st.isDirectory()) await walk(p);
      else if (st.isFile()) {
        const id = `${st.dev}:${st.ino}`;
        if (st.nlink > 1 && seen.has(id)) continue;
        seen.add(id);
        total += st.size;
      }
    }
  };
  await walk(dir);
  return total;
}
