import * as fs from 'node:fs/promises';
import {createHasher, type Digest, hashBytes, isDigest} from '../objects/digest.js';
import {scanEach} from './graph.js';
import {decodeImage, type Image} from '../objects/image.js';
import {KEY, type ContainerRecord, fileBlobValue, type LayerRecord, type Store} from '../objects/Store.js';
import {decodeTree} from '../objects/tree.js';

/**
 * One thing wrong. `object` is the index key of the broken or missing object (`b:b3:…`,
 * `t:b3:…`, `tag:name:tag`…); `referencedBy` the keys that name it.
 */
export interface Problem {
  readonly object: string;
  /** corrupt: stored but wrong; missing: named but absent (a blob's object file too). */
  readonly kind: 'corrupt' | 'missing';
  readonly message: string;
  readonly referencedBy: string[];
  /** With repair: whether its entry was removed. */
  repaired?: boolean;
}

export interface VerifyReport {
  /** Index entries checked. */
  readonly checked: number;
  readonly problems: Problem[];
  /** Images that reach a broken or missing object, with their tags. */
  readonly damagedImages: {id: Digest; tags: string[]}[];
  /** Containers whose image is damaged or missing, or whose writable layer is gone. */
  readonly damagedContainers: {id: string; name?: string}[];
  readonly repaired: boolean;
  /** Problems a fresh check finds after repair (references to missing objects, which a re-import restores); without repair, all of them. */
  readonly remaining: number;
}

/** Object files are hashed in steps of this size. */
const READ_STEP = 1024 * 1024;

/**
 * Re-hashes every object (inline blobs, object files, trees, images) and checks every
 * reference: tree -> blob and child tree, layer -> root tree, image -> layers, tag ->
 * image, container -> image and writable layer, name -> container, flat -> tree,
 * pin -> image or layer. One scan per key prefix.
 *
 * With `repair`, removes exactly the entries that are broken — corrupt objects (and the
 * object files of corrupt blobs), tags, names, pins and flattened stacks that name what is
 * missing — and never an intact object; images and containers that reached the damage
 * are named, so their content can be imported again (a re-import writes missing blobs back).
 * A blob missing from the index whose object file is still there and intact is indexed again.
 */
export async function verifyStore(store: Store, options: {repair?: boolean} = {}): Promise<VerifyReport> {
  let checked = 0;
  const corrupt = new Map<string, string>(); // key -> why
  const present = new Set<string>();
  const edges: [from: string, to: string][] = [];
  const images = new Map<Digest, Image>();
  const containers: ContainerRecord[] = [];
  const tags = new Map<string, Digest>();
  const blobFiles = new Set<Digest>();

  await scanEach(store, KEY.blob, async (k, v) => {
    checked++;
    present.add(k);
    const d = k.slice(KEY.blob.length) as Digest;
    if (v[0] === 0) {
      if (hashBytes(v.subarray(1)) !== d) corrupt.set(k, `blob ${d}: its bytes do not hash to its name`);
    } else if (v[0] === 1 && v.length === 9) {
      blobFiles.add(d);
      const why = await checkObjectFile(store.objectPath(d), d, Number(v.readBigUInt64BE(1)));
      if (why) corrupt.set(k, `blob ${d}: ${why}`);
    } else {
      corrupt.set(k, `blob ${d}: its index entry is malformed`);
    }
  });
  const trees = new Map<string, string[]>();
  await scanEach(store, KEY.tree, (k, v) => {
    checked++;
    present.add(k);
    const d = k.slice(KEY.tree.length) as Digest;
    if (hashBytes(v) !== d) return void corrupt.set(k, `tree ${d}: its bytes do not hash to its name`);
    try {
      const refs: string[] = [];
      for (const e of decodeTree(v, `tree ${d}`).entries) {
        if (e.kind === 'dir') refs.push(KEY.tree + e.tree);
        else if (e.kind === 'file' || e.kind === 'hardlink') refs.push(KEY.blob + e.blob);
      }
      trees.set(k, refs);
      for (const r of refs) edges.push([k, r]);
    } catch (err) {
      corrupt.set(k, `tree ${d}: ${(err as Error).message}`);
    }
  });
  await scanEach(store, KEY.layer, (k, v) => {
    checked++;
    present.add(k);
    const id = k.slice(KEY.layer.length);
    const rec = parseJson<LayerRecord>(v);
    if (!rec || rec.id !== id) return void corrupt.set(k, `layer ${id}: its record is malformed`);
    edges.push([k, KEY.tree + id]);
  });
  await scanEach(store, KEY.image, (k, v) => {
    checked++;
    present.add(k);
    const d = k.slice(KEY.image.length) as Digest;
    if (hashBytes(v) !== d) return void corrupt.set(k, `image ${d}: its bytes do not hash to its name`);
    try {
      const image = decodeImage(v, `image ${d}`);
      images.set(d, image);
      for (const l of image.layers) edges.push([k, KEY.layer + l]);
    } catch (err) {
      corrupt.set(k, (err as Error).message);
    }
  });
  const flats = new Map<string, Digest>();
  await scanEach(store, KEY.flat, (k, v) => {
    checked++;
    present.add(k);
    const tree = v.toString('utf8');
    if (!isDigest(tree)) return void corrupt.set(k, `flattened stack ${k.slice(KEY.flat.length)}: malformed`);
    flats.set(k, tree);
    edges.push([k, KEY.tree + tree]);
  });
  await scanEach(store, KEY.tag, (k, v) => {
    checked++;
    present.add(k);
    const image = v.toString('utf8');
    if (!isDigest(image)) return void corrupt.set(k, `tag ${k.slice(KEY.tag.length)}: malformed`);
    tags.set(k.slice(KEY.tag.length), image);
    edges.push([k, KEY.image + image]);
  });
  await scanEach(store, KEY.container, (k, v) => {
    checked++;
    present.add(k);
    const c = parseJson<ContainerRecord>(v);
    if (!c || c.id !== k.slice(KEY.container.length) || typeof c.image !== 'string')
      return void corrupt.set(k, `container ${k.slice(KEY.container.length)}: its record is malformed`);
    containers.push(c);
    edges.push([k, KEY.image + c.image]);
  });
  await scanEach(store, KEY.containerName, (k, v) => {
    checked++;
    present.add(k);
    edges.push([k, KEY.container + v.toString('utf8')]);
  });
  await scanEach(store, KEY.pin, k => {
    checked++;
    present.add(k);
    edges.push([k, k.slice(KEY.pin.length)]);
  });

  // A missing writable layer is a missing object of its own: `containers/<id>/upper`.
  const upperMissing = new Set<string>();
  for (const c of containers) {
    const st = await fs.stat(store.upperDir(c.id)).catch(() => undefined);
    if (!st?.isDirectory()) upperMissing.add(c.id);
  }

  const problems = new Map<string, Problem>();
  for (const [key, message] of corrupt) problems.set(key, {object: key, kind: 'corrupt', message, referencedBy: []});
  for (const [from, to] of edges) {
    if (!present.has(to) && !problems.has(to)) problems.set(to, {object: to, kind: 'missing', message: `${describe(to)} is missing`, referencedBy: []});
    problems.get(to)?.referencedBy.push(from);
  }
  for (const id of upperMissing)
    problems.set(`upper:${id}`, {object: `upper:${id}`, kind: 'missing', message: `the writable layer of container ${id} is missing`, referencedBy: [KEY.container + id]});

  // Damage: what reaches a broken or missing object.
  const refsOf = (n: string): string[] => {
    if (n.startsWith(KEY.tree)) return trees.get(n) ?? [];
    if (n.startsWith(KEY.layer)) return [KEY.tree + n.slice(KEY.layer.length)];
    if (n.startsWith(KEY.image)) return images.get(n.slice(KEY.image.length) as Digest)?.layers.map(l => KEY.layer + l) ?? [];
    return [];
  };
  // Memoized, so a layer or tree many images share is walked once. The graph has no cycles:
  // a tree's edges are read only when its bytes hash to its name.
  const reaches = new Map<string, boolean>();
  const reachesDamage = (n: string): boolean => {
    let bad = reaches.get(n);
    if (bad === undefined) {
      bad = problems.has(n) || refsOf(n).some(reachesDamage);
      reaches.set(n, bad);
    }
    return bad;
  };
  const damaged = new Set<Digest>();
  for (const id of images.keys()) if (reachesDamage(KEY.image + id)) damaged.add(id);
  const damagedImages = [...damaged].map(id => ({id, tags: [...tags].filter(([, i]) => i === id).map(([t]) => t)}));
  const damagedContainers = containers
    .filter(c => damaged.has(c.image) || !images.has(c.image) || upperMissing.has(c.id))
    .map(c => ({id: c.id, ...(c.name ? {name: c.name} : {})}));

  const list = [...problems.values()];
  let remaining = list.length;
  if (options.repair) {
    // A blob the index lost (a damaged table) may still have its object file: index it again.
    const found: {type: 'put'; key: string; value: Buffer}[] = [];
    for (const p of list) {
      if (p.kind !== 'missing' || !p.object.startsWith(KEY.blob)) continue;
      const d = p.object.slice(KEY.blob.length) as Digest;
      const st = await fs.stat(store.objectPath(d)).catch(() => undefined);
      if (!st?.isFile() || (await checkObjectFile(store.objectPath(d), d, st.size)) !== undefined) continue;
      found.push({type: 'put', key: p.object, value: fileBlobValue(st.size)});
      p.repaired = true;
    }
    if (found.length > 0) await store.commit(found);
  }
  if (options.repair && list.length > 0) {
    const damagedFlats = [...flats].filter(([, tree]) => reachesDamage(KEY.tree + tree)).map(([k]) => k);
    await repair(store, list, damagedFlats, blobFiles);
    remaining = (await verifyStore(store)).problems.length;
  }
  return {checked, problems: list, damagedImages, damagedContainers, repaired: options.repair ?? false, remaining};
}

/**
 * Deletes corrupt entries and refs that name missing objects, in one atomic batch, then
 * the object files of deleted blobs. Flattened stacks are caches: one whose tree is damaged
 * goes too. Missing objects cannot be removed; they stay as problems.
 */
async function repair(store: Store, problems: Problem[], damagedFlats: string[], blobFiles: Set<Digest>): Promise<void> {
  const del = new Set<string>();
  for (const p of problems) {
    if (p.kind === 'corrupt') {
      del.add(p.object);
      p.repaired = true;
    }
  }
  // Names of missing things: a dangling tag, name, pin or flat carries no data of its own.
  const dangling = (k: string) => k.startsWith(KEY.tag) || k.startsWith(KEY.containerName) || k.startsWith(KEY.pin) || k.startsWith(KEY.flat);
  for (const p of problems) {
    const refs = p.referencedBy.filter(dangling);
    refs.forEach(r => del.add(r));
    if (p.kind === 'missing' && refs.length === p.referencedBy.length && refs.length > 0) p.repaired = true;
  }
  // A flat that names a damaged tree: its stack's layers are damaged too, and it is only a cache.
  for (const k of damagedFlats) del.add(k);
  if (del.size === 0) return;
  await store.commit([...del].map(key => ({type: 'del' as const, key})));
  for (const k of del) {
    const d = k.slice(KEY.blob.length) as Digest;
    if (k.startsWith(KEY.blob) && blobFiles.has(d)) await fs.rm(store.objectPath(d), {force: true});
  }
}

async function checkObjectFile(file: string, d: Digest, size: number): Promise<string | undefined> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'its object file is missing';
    throw err;
  }
  try {
    const hasher = createHasher();
    const buf = Buffer.allocUnsafe(READ_STEP);
    let total = 0;
    for (;;) {
      const {bytesRead} = await fh.read(buf, 0, READ_STEP, null);
      if (bytesRead === 0) break;
      hasher.update(buf.subarray(0, bytesRead));
      total += bytesRead;
    }
    if (total !== size) return `its object file has ${total} bytes, the index says ${size}`;
    if (hasher.digest() !== d) return 'its object file does not hash to its name';
    return undefined;
  } finally {
    await fh.close();
  }
}

function parseJson<T>(v: Buffer): T | undefined {
  try {
    return JSON.parse(v.toString('utf8')) as T;
  } catch {
    return undefined;
  }
}

const KINDS: [string, string][] = [[KEY.blob, 'blob'], [KEY.tree, 'tree'], [KEY.layer, 'layer'], [KEY.image, 'image'], [KEY.tag, 'tag'], [KEY.containerName, 'container name'], [KEY.container, 'container'], [KEY.flat, 'flattened stack'], [KEY.pin, 'pin']];

/** `t:b3:…` -> `tree b3:…`: an index key as people read it. */
export function describe(key: string): string {
  if (key.startsWith('upper:')) return `the writable layer of container ${key.slice(6)}`;
  for (const [prefix, word] of KINDS) if (key.startsWith(prefix)) return `${word} ${key.slice(prefix.length)}`;
  return key;
}
