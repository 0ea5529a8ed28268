import * as fs from 'node:fs/promises';
import {createHasher, type Digest, hashBytes, isDigest} from '../objects/digest.js';
import {decodeImage} from '../objects/image.js';
import {type ObjectGraph, edgesOf, treeRefs} from './graph.js';
import type {ContainerRecord, LayerRecord, Store} from '../objects/Store.js';
import type {IndexOp} from '../index/Index.js';
import {type KeyKind, PREFIX, blobKey, containerKey, digestOf, flatKey, imageKey, parseKey, treeKey} from '../index/keys.js';
import {decodeBlobValue, decodeText, fileBlobValue, tryDecodeRecord} from '../index/values.js';
import {decodeTree} from '../objects/tree.js';
import {findDamagedPacks, removeDamagedPacks} from '../meta/checkPacks.js';
import {KeySet} from './keySet.js';

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
  // Every key of the index: blob keys as 32 bytes each (keySet.ts), so a million blobs are not a million strings.
  const present = new KeySet();
  /** Entries that passed their check, in scan order: the nodes whose edges are followed. */
  const sound: string[] = [];
  // The graph of what was checked; edgesOf (graph.ts) says what references what, as for gc.
  const trees = new Map<Digest, string[]>();
  const g: ObjectGraph = {trees, images: new Map(), flats: new Map(), tags: new Map(), containers: new Map(), containerNames: new Map()};
  const containers: ContainerRecord[] = [];
  const blobFiles = new Set<Digest>();

  const {index} = store;
  await index.scanEach(PREFIX.blob, async (k, v) => {
    checked++;
    present.add(k);
    const d = digestOf(k, 'blob')!;
    const blob = decodeBlobValue(v);
    if (!blob) {
      corrupt.set(k, `blob ${d}: its index entry is malformed`);
    } else if (!blob.file) {
      if (hashBytes(blob.data) !== d) corrupt.set(k, `blob ${d}: its bytes do not hash to its name`);
    } else {
      blobFiles.add(d);
      const why = await checkObjectFile(store.objectPath(d), d, blob.size);
      if (why) corrupt.set(k, `blob ${d}: ${why}`);
    }
  });
  await index.scanEach(PREFIX.tree, (k, v) => {
    checked++;
    present.add(k);
    const d = digestOf(k, 'tree')!;
    if (hashBytes(v) !== d) return void corrupt.set(k, `tree ${d}: its bytes do not hash to its name`);
    try {
      decodeTree(v, `tree ${d}`); // the full check: canonical form, names, kinds
      trees.set(d, treeRefs(v, `tree ${d}`).refs);
      sound.push(k);
    } catch (err) {
      corrupt.set(k, `tree ${d}: ${(err as Error).message}`);
    }
  });
  await index.scanEach(PREFIX.layer, (k, v) => {
    checked++;
    present.add(k);
    const id = digestOf(k, 'layer')!;
    const rec = tryDecodeRecord<LayerRecord>(v);
    if (!rec || rec.id !== id) return void corrupt.set(k, `layer ${id}: its record is malformed`);
    sound.push(k);
  });
  await index.scanEach(PREFIX.image, (k, v) => {
    checked++;
    present.add(k);
    const d = digestOf(k, 'image')!;
    if (hashBytes(v) !== d) return void corrupt.set(k, `image ${d}: its bytes do not hash to its name`);
    try {
      g.images.set(d, decodeImage(v, `image ${d}`));
      sound.push(k);
    } catch (err) {
      corrupt.set(k, (err as Error).message);
    }
  });
  await index.scanEach(PREFIX.flat, (k, v) => {
    checked++;
    present.add(k);
    const tree = decodeText(v);
    if (!isDigest(tree)) return void corrupt.set(k, `flattened stack ${digestOf(k, 'flat')}: malformed`);
    g.flats.set(digestOf(k, 'flat')!, tree);
    sound.push(k);
  });
  await index.scanEach(PREFIX.tag, (k, v) => {
    checked++;
    present.add(k);
    const image = decodeText(v);
    const tag = k.slice(PREFIX.tag.length);
    if (!isDigest(image)) return void corrupt.set(k, `tag ${tag}: malformed`);
    g.tags.set(tag, image);
    sound.push(k);
  });
  await index.scanEach(PREFIX.container, (k, v) => {
    checked++;
    present.add(k);
    const id = k.slice(PREFIX.container.length);
    const c = tryDecodeRecord<ContainerRecord>(v);
    if (!c || c.id !== id || typeof c.image !== 'string')
      return void corrupt.set(k, `container ${id}: its record is malformed`);
    containers.push(c);
    g.containers.set(id, c);
    sound.push(k);
  });
  await index.scanEach(PREFIX.containerName, (k, v) => {
    checked++;
    present.add(k);
    g.containerNames.set(k.slice(PREFIX.containerName.length), decodeText(v));
    sound.push(k);
  });
  await index.scanEach(PREFIX.pin, k => {
    checked++;
    present.add(k);
    sound.push(k);
  });

  // Small-blob packs are derived files, but a mount serves their bytes.
  const damagedPacks = findDamagedPacks(store);

  // A missing writable layer is a missing object of its own: `containers/<id>/upper`.
  const upperMissing = new Set<string>();
  for (const c of containers) {
    const st = await fs.stat(store.upperDir(c.id)).catch(() => undefined);
    if (!st?.isDirectory()) upperMissing.add(c.id);
  }

  // A flattened stack is a cache of its image's layers: gc keeps it with the image, but a
  // damaged one is dropped, not reported against the image, so verify leaves those edges out.
  const all = edgesOf(g);
  const edges = (n: string): readonly string[] => digestOf(n, 'image') ? all(n).filter(to => !digestOf(to, 'flat')) : all(n);

  const problems = new Map<string, Problem>();
  for (const [key, message] of corrupt) problems.set(key, {object: key, kind: 'corrupt', message, referencedBy: []});
  for (const from of sound) {
    for (const to of edges(from)) {
      if (!present.has(to) && !problems.has(to)) problems.set(to, {object: to, kind: 'missing', message: `${describe(to)} is missing`, referencedBy: []});
      problems.get(to)?.referencedBy.push(from);
    }
  }
  for (const p of damagedPacks)
    problems.set(packKey(p.pack), {object: packKey(p.pack), kind: 'corrupt', message: `the small-blob pack packs/${p.pack.slice(3)}.erofs: ${p.why}`, referencedBy: []});
  for (const id of upperMissing)
    problems.set(`upper:${id}`, {object: `upper:${id}`, kind: 'missing', message: `the writable layer of container ${id} is missing`, referencedBy: [containerKey(id)]});

  // Damage: what reaches a broken or missing object. Memoized, so a layer or tree many
  // images share is walked once. The graph has no cycles: a tree's edges are read only
  // when its bytes hash to its name.
  const reaches = new Map<string, boolean>();
  const reachesDamage = (n: string): boolean => {
    if (n.startsWith(PREFIX.blob)) return problems.has(n); // a leaf: nothing to remember
    let bad = reaches.get(n);
    if (bad === undefined) {
      bad = problems.has(n) || edges(n).some(reachesDamage);
      reaches.set(n, bad);
    }
    return bad;
  };
  const damaged = new Set<Digest>();
  for (const id of g.images.keys()) if (reachesDamage(imageKey(id))) damaged.add(id);
  const damagedImages = [...damaged].map(id => ({id, tags: [...g.tags].filter(([, i]) => i === id).map(([t]) => t)}));
  const damagedContainers = containers
    .filter(c => damaged.has(c.image) || !g.images.has(c.image) || upperMissing.has(c.id))
    .map(c => ({id: c.id, ...(c.name ? {name: c.name} : {})}));

  const list = [...problems.values()];
  let remaining = list.length;
  if (options.repair) {
    // A blob the index lost (a damaged table) may still have its object file: index it again.
    const found: IndexOp[] = [];
    for (const p of list) {
      const d = digestOf(p.object, 'blob');
      if (p.kind !== 'missing' || !d) continue;
      const st = await fs.stat(store.objectPath(d)).catch(() => undefined);
      if (!st?.isFile() || (await checkObjectFile(store.objectPath(d), d, st.size)) !== undefined) continue;
      found.push({type: 'put', key: p.object, value: fileBlobValue(st.size)});
      p.repaired = true;
    }
    if (found.length > 0) await index.commit(found);
  }
  if (options.repair && list.length > 0) {
    const damagedFlats = [...g.flats].filter(([, tree]) => reachesDamage(treeKey(tree))).map(([chain]) => flatKey(chain));
    await repair(store, list.filter(p => !p.object.startsWith('pack:')), damagedFlats, blobFiles);
    if (damagedPacks.length > 0) {
      // The metadata images that name them go too: the next mount builds them again.
      removeDamagedPacks(store, damagedPacks);
      for (const p of damagedPacks) problems.get(packKey(p.pack))!.repaired = true;
    }
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
  const NAMES: ReadonlySet<KeyKind | undefined> = new Set(['tag', 'containerName', 'pin', 'flat']);
  const dangling = (k: string) => NAMES.has(parseKey(k)?.kind);
  for (const p of problems) {
    const refs = p.referencedBy.filter(dangling);
    refs.forEach(r => del.add(r));
    if (p.kind === 'missing' && refs.length === p.referencedBy.length && refs.length > 0) p.repaired = true;
  }
  // A flat that names a damaged tree: its stack's layers are damaged too, and it is only a cache.
  for (const k of damagedFlats) del.add(k);
  if (del.size === 0) return;
  await store.index.commit([...del].map(key => ({type: 'del' as const, key})));
  for (const k of del) {
    const d = digestOf(k, 'blob');
    if (d && blobFiles.has(d)) await fs.rm(store.objectPath(d), {force: true});
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

/** The problem key of a damaged small-blob pack: `pack:b3:…`. */
const packKey = (pack: Digest): string => `pack:${pack}`;

/** How `describe` names each family of keys. */
const WORDS: Record<KeyKind, string> = {
  blob: 'blob', tree: 'tree', layer: 'layer', image: 'image', tag: 'tag', containerName: 'container name', container: 'container', flat: 'flattened stack', pin: 'pin', lease: 'lease',
  layerBlob: 'layer blob record', blobLayer: 'blob-to-layer record', blobRepos: 'blob locations', imageSource: 'image source record',
};

/** `t:b3:…` -> `tree b3:…`: an index key as people read it. */
export function describe(key: string): string {
  if (key.startsWith('upper:')) return `the writable layer of container ${key.slice(6)}`;
  if (key.startsWith('pack:')) return `the small-blob pack ${key.slice(5)}`;
  const parsed = parseKey(key);
  return parsed ? `${WORDS[parsed.kind]} ${parsed.id}` : key;
}
