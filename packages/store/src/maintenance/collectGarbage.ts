import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type {Digest} from '../objects/digest.js';
import {markEdges} from './gc.js';
import {BLOB_DIGEST, DigestSet, type KeyLookup, type KeySet} from './keySet.js';
import {type IndexGraph, blobInfo, forEachEdge, loadGraph, loadNode, loadRoots} from './graph.js';
import {isLeaseAlive, isProcessAlive, listLeases, removeLease} from './leases.js';
import {emptyTrash, makeTrash, moveToTrash} from './trash.js';
import {readdirOrEmpty} from '../makeDirs.js';
import {StoreError} from '../errors.js';
import type {Store} from '../objects/Store.js';
import type {IndexOp} from '../index/Index.js';
import {PREFIX, parseKey, blobKey, blobReposKey, containerKey, flatKey, imageKey, imageSourceKey, layerKey, treeKey} from '../index/keys.js';
import {type DerivedKind, sweepDerived} from '../meta/sweepDerived.js';
import {phaseMarks} from './phaseMarks.js';
import {REF_BLOB} from '../objects/tree.js';

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

/** Blob deletes per index batch (each synced): bounds the memory of a gc that removes millions. */
const BLOB_BATCH = 16_384;

/** Blob keys of the scan converted from hex at once (KeySet.eachBlobKeyMissing, DigestSet.addEachHex). */
const SIFT_STEP = 1024;
/**
 * The blob family split by a digest's first hex digit into parts scanned side by side: LevelDB
 * reads every inline byte of the family to list its keys, and one iterator doing it on one
 * libuv thread was what the mark waited for longest (docs/design.md, "gc, third round").
 */
const BLOB_SCAN_BOUNDS = [PREFIX.blob, `${PREFIX.blob}b3:4`, `${PREFIX.blob}b3:8`, `${PREFIX.blob}b3:c`, `${PREFIX.blob}\xff`];
/**
 * Blob keys of the scan held as they are, at most, while the first mark is not done: the
 * scan is the shorter road, so without this every key became a candidate (the gcprune
 * store: 5,412 candidates for 416 garbage blobs, each made a digest, kept and compared
 * again). Held keys are sifted against the mark once it is done; beyond this many (~1.5 MB
 * of strings) the oldest go into the candidates whole, as before.
 */
const HELD_KEYS_MAX = 16_384;
/** Candidates up to which the garbage is copied into a set of bytes for the walk of garbage trees (see there). */
const COPY_MAX = 4096;
/** A garbage blob's size not learnt from a tree (its value is read). */
const UNKNOWN_SIZE = 0xffff_ffff;

const KINDS: GcKind[] = ['blob', 'tree', 'layer', 'image', 'flat', 'registry', 'lease', 'orphanFile', 'tmpFile', 'containerDir', 'metaImage', 'pack', 'smallFile'];

/**
 * Mark and sweep, while other processes go on working (docs/design.md, "Many processes on
 * one store", has the argument).
 *
 * 1. Mark without holding anyone up: gc scans the index family by family (`loadGraph`);
 *    when another process asks for the index meanwhile, gc hands it over like any holder
 *    and goes on in a snapshot. It marks what the roots of that scan reach (images of tags
 *    and containers, pins). The blob keys are scanned meanwhile, and those the mark did not
 *    reach are kept as candidates. Others read and write meanwhile.
 * 2. Decide at one moment, holding the lock (`exclusive`): read the roots again and every
 *    live lease (maintenance/leases.ts: what processes at work have written or rely on),
 *    and mark what they reach beyond step 1's marks (new images, new content, against the
 *    index as it is now). Only entries that step 1 saw can go, and of those only what
 *    neither mark reached: an entry written after the snapshot is not a candidate, an entry
 *    a writer relies on is in its lease, and a lease is written under the lock before the
 *    content it covers, so none of them is lost.
 * 3. Still holding the lock: delete the chosen entries that name others in ONE atomic,
 *    fsynced batch (with the first chosen blobs), then the other chosen blobs in batches
 *    (BLOB_BATCH), then move their object files, and object files no entry names now, to the trash
 *    (maintenance/trash.ts), which is emptied when no process that could still need a file
 *    is running.
 *    The derived files nothing live needs (metadata images of trees no longer live,
 *    small-blob packs no kept image names) are chosen once the marks are done and removed
 *    on libuv's threads meanwhile (rebuilt on use, they keep nothing alive).
 * 4. Without the lock: temporary files of dead processes, writable-layer directories of
 *    containers with no record, leases of dead processes, old trash.
 *
 * Crash safety: what names others goes all at once or not at all, and blobs name nothing,
 * so no kill leaves a kept object naming a deleted one; files go only after the index stopped naming them, and a
 * file a kill leaves behind is an orphan the next gc removes.
 * Cost: one sequential scan per key prefix (the small record families in one), a mark linear in what is live, a walk of
 * objects/ and tmp/; the lock is held for the re-read of the roots, the second mark (what
 * changed since the snapshot) and the deletes.
 */
export async function collectGarbage(store: Store, options: GcOptions = {}): Promise<GcReport> {
  const dryRun = options.dryRun ?? false;
  const marks = phaseMarks();
  marks.mark('start');
  const byKind = Object.fromEntries(KINDS.map(k => [k, {count: 0, bytes: 0}])) as GcReport['byKind'];
  const count = (kind: GcKind, bytes: number) => { byKind[kind].count++; byKind[kind].bytes += bytes; };

  // Held from here to the decision, the index is as the scan read it: nobody else can write.
  const tenure = store.index.holdToken();
  // The blob keys, most of the index, are scanned (on libuv's threads) while the other
  // families are read and marked (the object files are listed under the lock, while the
  // deletes are synced). A blob key goes
  // into `candidates` (32 bytes) unless the first mark, once done, reached it; the sweep
  // takes the candidates that neither mark reached. A blob written after its key's step of
  // the scan is no candidate.
  const candidates = new DigestSet();
  let marked: KeySet | undefined;
  let blobsSeen = 0;
  let step: string[] = [];
  let held: string[][] = [];
  let heldKeys = 0;
  // A malformed key (no digest) goes into neither set: it is never removed, and verify names it.
  const addCandidate = (k: string) => { candidates.addHex(k, BLOB_DIGEST); };
  const sift = () => {
    if (marked) {
      for (const keys of held) marked.eachBlobKeyMissing(keys, addCandidate);
      held = [];
      heldKeys = 0;
      marked.eachBlobKeyMissing(step, addCandidate);
    } else {
      // Held until the mark is done: a key it reached would only be compared again at the
      // sweep (the second mark goes on from the first, so the outcome is the same).
      held.push(step);
      heldKeys += step.length;
      while (heldKeys > HELD_KEYS_MAX) {
        const keys = held.shift()!;
        heldKeys -= keys.length;
        candidates.addEachHex(keys, BLOB_DIGEST);
      }
    }
    step = [];
  };
  const eachBlobKey = (k: string) => {
    blobsSeen++;
    if (step.push(k) === SIFT_STEP) sift();
  };
  // Nodes the first mark reached but could not follow, because the scan of their family had
  // passed before they were written (a tag read late names an image read too early): the
  // second mark follows them in the index as it is then.
  const unfollowed = new Set<string>();
  const loadAndMark = loadGraph(store, {blobs: false, decodeTrees: false}).then(g => {
    marks.mark('graph loaded');
    const firstEdges = forEachEdge(g);
    marked = markEdges(rootsOf(g), (node, sink) => {
      if (!inGraph(g, node)) unfollowed.add(node);
      else firstEdges(node, sink);
    });
    marks.mark('first mark done');
    return {g, live: marked};
  });
  // After the graph's scans are queued: the first mark, which waits for the trees, is the longer road.
  const blobScan = Promise.all(BLOB_SCAN_BOUNDS.slice(1).map((lt, i) => store.index.scanKeyRange(BLOB_SCAN_BOUNDS[i]!, lt, eachBlobKey)))
    .then(() => marks.mark('blob keys scanned'));
  const [{g, live}] = await Promise.all([loadAndMark, blobScan]);
  sift();

  const decided = await store.index.exclusive(async () => {
    // This process held the index from before the scan to now: the roots and entries are
    // those the scan read, so reading them again would find nothing new.
    const undisturbed = tenure !== undefined && store.index.holdToken() === tenure;
    const now = undisturbed ? g : await loadRoots(store);
    const leases = listLeases(store.dir);
    // This handle's own lease is left out: what it wrote, it has named by now or given up.
    const liveLeases = leases.filter(l => l.id !== store.leaseId && isLeaseAlive(l));
    const roots = [...rootsOf(now)];
    for (const l of liveLeases) roots.push(...l.keys);
    // Entries written since the scan are kept this time, with all they reach: an untagged
    // image committed meanwhile must not be left naming a layer this gc removed (a later
    // gc, which sees it, decides about it). Blobs name nothing, so only these families.
    if (!undisturbed) roots.push(...await unseenSince(store, g));
    // What the roots of now reach beyond the first mark, read from the index as it is: marked
    // into `live`, where a node the first mark followed stops the walk (all below it is
    // live already), except the nodes it could not follow.
    const current: IndexGraph = {...g, tags: now.tags, containers: now.containers, containerNames: now.containerNames, pins: now.pins};
    const edges = forEachEdge(current);
    markEdges(roots, (node, sink) => {
      loadNode(store, current, node);
      edges(node, sink);
    }, {into: live, expand: unfollowed});
    // Derived files nothing live needs (metadata images, packs: rebuilt on use, so one removed
    // before the index forgets its tree loses nothing) are chosen now and removed on libuv's
    // threads while the deletes below are made and synced. A file made since the start of
    // the oldest other process at work is kept (a build names its packs only after touching them).
    const since = Math.min(Date.now(), ...liveLeases.filter(l => l.pid !== process.pid).map(l => Date.parse(l.created)));
    marks.mark('decided');
    const derived = sweepDerived(store, live, since, dryRun, count);
    derived.catch(() => undefined); // awaited once the lock is let go
    marks.mark('derived chosen');

    const dels: IndexOp[] = [];
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
    // Lease records in the index are from stores made before leases moved to files.
    for (const key of g.oldLeases) {
      count('lease', 0);
      dels.push({type: 'del', key});
    }
    // Everything that names others goes in ONE atomic batch, through the store's index (so
    // its memory of what exists forgets the deleted keys too), with garbage blobs up to
    // BLOB_BATCH deletes in all (one synced write where most runs made two); then the other
    // blobs, in batches of BLOB_BATCH. Blobs name nothing, and after the first batch nothing left names
    // a garbage blob (a live entry would have made it live), so a kill between batches leaves
    // unnamed blobs for the next gc, never an entry naming a deleted one. One batch of a
    // million deletes held ~800 bytes of memory each. Object files go after the last batch.
    let batch: IndexOp[] = dels;
    const deleteBatch = async () => {
      if (!dryRun && batch.length > 0) await store.index.commit(batch);
      batch = [];
    };
    // The garbage blobs: the candidates the second mark did not reach either, found by
    // comparing the two sets (a hex string is made only for what goes). What the report
    // counts of one, its size, comes from the file entries of the garbage trees that name
    // it, and whether its bytes are an object file from the listing of objects/: gc reads no
    // blob value (each point read cost ~40 µs from a cold block, and a hundred of them set
    // LevelDB off compacting). A blob no garbage tree names (one a killed import wrote) has
    // its value read instead. The walk asks a set of bytes about each file entry (most are
    // live blobs, which the first word of their digest rules out): a set of strings made the
    // hex of every garbage tree (docs/benchmarks.md, "gc, fourth round"). Up to COPY_MAX
    // candidates, the garbage alone is copied into such a set (~45 bytes each); past
    // STRING_DIGESTS_MAX the candidates are bytes already and are asked as they are; in
    // between, copying would cost about what it saves (a store of garbage alone), so the
    // strings are asked.
    marks.mark('entries swept');
    const copied = !candidates.inBytes && candidates.size <= COPY_MAX;
    const table = copied ? DigestSet.ofBytes() : candidates;
    if (copied) for (const i of live.blobIndexesMissing(candidates)) table.add(candidates.digestAt(i));
    // Sizes by digest of `table`, 4 bytes each; UNKNOWN (also for 4 GiB and more) has the value read.
    const sizes = new Uint32Array(table.size).fill(UNKNOWN_SIZE);
    let unknown = copied ? table.size : Infinity; // the walk ends once every garbage blob has its size
    const found = (i: number, size: number) => {
      if (size < UNKNOWN_SIZE && sizes[i] === UNKNOWN_SIZE) {
        sizes[i] = size;
        unknown--;
      }
    };
    const refs: number[] = [];
    for (const d of g.treeBytes.keys()) {
      if (unknown === 0) break;
      if (live.has(treeKey(d))) continue;
      let tree: {buf: Buffer; count: number} | undefined;
      try {
        tree = g.trees.encodedRefs(d, refs);
      } catch (err) {
        // A garbage tree that does not decode: the values of the blobs it named are read.
        if (!(err instanceof StoreError && err.code === 'OBJECT_CORRUPT')) throw err;
      }
      if (tree) table.eachRefHeld(tree.buf, refs, tree.count, REF_BLOB, found);
    }
    marks.mark('sizes of garbage blobs');
    let garbage = 0;
    for (const i of copied ? Array.from({length: table.size}, (_, k) => k) : live.blobIndexesMissing(candidates)) {
      garbage++;
      const d = table.digestAt(i);
      const key = blobKey(d);
      let size = sizes[i]!;
      if (size === UNKNOWN_SIZE) {
        const v = store.index.getSync(key);
        size = v ? blobInfo(v, d).size : 0;
      }
      count('blob', size);
      batch.push({type: 'del', key});
      if (batch.length >= BLOB_BATCH) await deleteBatch();
    }
    // The object files are listed while LevelDB writes and syncs the last batch: the main
    // thread waits there, where it had listed them during the mark, its longest road. The
    // listing is synchronous (an async readdir per fan directory cost twice the CPU). Files
    // placed since are not looked at (a later gc does); nobody can lease new content while
    // gc holds the lock, and what live leases name is marked.
    const written = deleteBatch();
    written.catch(() => undefined); // awaited below
    await new Promise(resolve => setImmediate(resolve)); // the batch is handed to LevelDB's thread
    const filesOnDisk = listObjectFiles(store);
    marks.mark('object files listed');
    await written;
    marks.mark('deletes synced');
    kept += blobsSeen - garbage;
    // Then the object files: of garbage blobs (counted above), and those no entry names.
    let trashDir: string | undefined;
    const toTrash = dryRun ? undefined : (file: string, hex: string) => moveToTrash(trashDir ??= makeTrash(store.dir), file, hex);
    await sweepObjectFiles(store, filesOnDisk, live, candidates, toTrash, count);
    marks.mark('object files swept');
    return {leases, liveLeases, kept, roots: new Set(roots).size, derived};
  });

  for (const l of decided.leases) {
    if (l.id === store.leaseId || decided.liveLeases.includes(l)) continue;
    count('lease', 0);
    if (!dryRun) removeLease(store.dir, l.id);
  }
  await sweepTmp(store, dryRun, count);
  const othersStart = Math.min(Date.now(), ...decided.liveLeases.filter(l => l.pid !== process.pid).map(l => Date.parse(l.created)));
  await sweepContainerDirs(store, live, othersStart, dryRun, count);
  if (!dryRun) emptyTrash(store.dir, othersStart);
  marks.mark('leases, tmp, containers, trash');
  await decided.derived;
  marks.mark('end');
  marks.report();

  const objects = KINDS.reduce((n, k) => n + byKind[k].count, 0);
  const bytes = KINDS.reduce((n, k) => n + byKind[k].bytes, 0);
  return {dryRun, objects, bytes, byKind, roots: decided.roots, kept: decided.kept};
}

/** Whether the graph holds what `edgesOf` needs to follow `node` (a tree, image or flat read by the scan). */
function inGraph(g: IndexGraph, node: string): boolean {
  if (node.startsWith(PREFIX.blob)) return true; // leaves, most of the nodes: no parse
  const key = parseKey(node);
  switch (key?.kind) {
    case 'tree': return g.trees.has(key.id as Digest);
    case 'image': return g.images.has(key.id as Digest);
    case 'flat': return g.flats.has(key.id as Digest);
    default: return true;
  }
}

/** Keys of the families that name other entries (trees, layers, images, flats, sources) that the graph lacks. */
async function unseenSince(store: Store, g: IndexGraph): Promise<string[]> {
  const out: string[] = [];
  const families: [string, (id: Digest) => boolean][] = [
    [PREFIX.tree, id => g.trees.has(id)], [PREFIX.layer, id => g.layers.has(id)], [PREFIX.image, id => g.images.has(id)],
    [PREFIX.flat, id => g.flats.has(id)], [PREFIX.imageSource, id => g.sources.has(id)],
  ];
  for (const [prefix, seen] of families)
    await store.index.scanKeys(prefix, k => { if (!seen(k.slice(prefix.length) as Digest)) out.push(k); });
  return out;
}

/** The roots of a graph: the images of tags and containers, the containers, the pins. */
function rootsOf(g: Pick<IndexGraph, 'tags' | 'containers' | 'pins'>): string[] {
  const roots: string[] = [];
  for (const image of g.tags.values()) roots.push(imageKey(image));
  for (const c of g.containers.values()) roots.push(imageKey(c.image), containerKey(c.id));
  roots.push(...g.pins);
  return roots;
}

/**
 * The object files to remove: those of garbage blobs (the candidates no mark reached, whose
 * entries are gone by now), and those whose digest the index does not name (a crash came
 * between rename and index write). Runs under the lock, after the deletes, and asks the
 * index as it is (not the snapshot of the mark), since a writer may have named a file since;
 * one it is still about to name comes back from the trash when its batch is checked. Files
 * of blobs the marks reached are kept without a lookup (a live tree naming an unindexed file
 * is damage: verify says so, and the file stays for a repair). The trash directory is made
 * with the first file it takes (most runs move none).
 */
async function sweepObjectFiles(store: Store, filesOnDisk: string[], live: KeySet, candidates: DigestSet, toTrash: ((file: string, hex: string) => void) | undefined, count: (k: GcKind, b: number) => void): Promise<void> {
  for (const hex of filesOnDisk) {
    if (live.hasBlobHex(hex)) continue;
    const file = path.join(store.dir, 'objects', 'b3', hex.slice(0, 2), hex.slice(2));
    if (candidates.hasHex(hex, '')) { // a garbage blob's, counted with it
      toTrash?.(file, hex);
      continue;
    }
    if (store.index.getSync(blobKey(`b3:${hex}` as Digest)) !== undefined) continue;
    const st = await fsp.lstat(file).catch(() => undefined);
    if (!st) continue;
    count('orphanFile', st.size);
    toTrash?.(file, hex);
  }
}

/** Every object file under objects/b3, by its hex digest (names alone: a name of 62 hex digits under a fan directory). */
function listObjectFiles(store: Store): string[] {
  const out: string[] = [];
  const base = path.join(store.dir, 'objects', 'b3');
  for (const fan of readdirOrEmpty(base)) {
    if (fan.length !== 2) continue;
    let names: string[];
    try {
      names = fs.readdirSync(`${base}/${fan}`); // not path.join: its normalising, per fan directory, cost more than the readdir's JavaScript
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue; // gone meanwhile, or a stray file: no objects in it
      throw err;
    }
    for (const name of names) if (name.length === 62) out.push(fan + name);
  }
  return out;
}

/** Temporary files are named `<label>-<pid>-<random>`; those of processes that ended are stale. */
async function sweepTmp(store: Store, dryRun: boolean, count: (k: GcKind, b: number) => void): Promise<void> {
  const dir = path.join(store.dir, 'tmp');
  for (const name of readdirOrEmpty(dir)) {
    const pid = Number(/-(\d+)-[0-9a-f]+$/.exec(name)?.[1]);
    if (isProcessAlive(pid)) continue;
    const file = path.join(dir, name);
    const st = await fsp.lstat(file).catch(() => undefined);
    if (!st) continue;
    count('tmpFile', st.isFile() ? st.size : 0);
    if (!dryRun) await fsp.rm(file, {recursive: true, force: true});
  }
}

/**
 * A container directory with no record: a kill came between removing the record and the
 * files. One made since another process still running began may be a container being
 * created (its directory comes before its record), so it stays for a later gc.
 */
async function sweepContainerDirs(store: Store, live: KeyLookup, othersStart: number, dryRun: boolean, count: (k: GcKind, b: number) => void): Promise<void> {
  const dir = path.join(store.dir, 'containers');
  const ids = readdirOrEmpty(dir);
  if (ids.length === 0) return;
  // A kernel mount under a container directory is left alone: deleting through it would
  // reach into the overlay (and the metadata image's read-only mount) rather than unlink.
  const mounts = (await fsp.readFile('/proc/self/mountinfo', 'utf8').catch(() => '')).split('\n').map(l => l.split(' ')[4] ?? '');
  const real = await fsp.realpath(dir).catch(() => dir);
  const records = await loadRoots(store);
  for (const id of ids) {
    if (live.has(containerKey(id)) || records.containers.has(id)) continue;
    if (mounts.some(m => m.startsWith(`${path.join(real, id)}/`))) continue;
    const st = await fsp.stat(path.join(dir, id)).catch(() => undefined);
    if (!st || st.birthtimeMs >= othersStart || st.ctimeMs >= othersStart) continue;
    count('containerDir', 0);
    if (!dryRun) await fsp.rm(path.join(dir, id), {recursive: true, force: true});
  }
}
