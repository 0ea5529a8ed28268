import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test from 'ava';
import {type Digest, Store, collectGarbage, verifyStore, hashBytes, importDirectory, INLINE_MAX, addPin, listPins, removePin} from '../src/index.js';
import {blobKey, imageKey, layerKey, treeKey} from '../src/index/keys.js';
import {Lease, leaseDir} from '../src/maintenance/leases.js';
import {mark} from '../src/maintenance/gc.js';
import {bytesOf, imageOf, indexKeys} from './_images.js';
import {openTempStore, tempDir, writeTree} from './_helpers.js';

test('mark visits each reachable node once and nothing else', t => {
  const edges: Record<string, string[]> = {a: ['b', 'c'], b: ['c', 'a'], c: ['d'], d: [], x: ['a']};
  const seen: string[] = [];
  const live = mark(['a', 'a'], n => { seen.push(n); return edges[n] ?? []; });
  t.deepEqual([...live].sort(), ['a', 'b', 'c', 'd']);
  t.deepEqual(seen.sort(), ['a', 'b', 'c', 'd']);
});

test('gc keeps exactly what tags reach and removes the rest', async t => {
  const store = await openTempStore(t);
  const kept = await imageOf(t, store, {'a.txt': 'kept', 'shared.txt': 'shared', 'big.bin': bytesOf('k', INLINE_MAX + 10)}, {tag: 'kept:1'});
  const keysBefore = await indexKeys(store);
  const gone = await imageOf(t, store, {'b.txt': 'gone', 'shared.txt': 'shared', 'sub/c.txt': 'gone too', 'big.bin': bytesOf('g', INLINE_MAX + 20)});
  const report = await collectGarbage(store);
  t.deepEqual(await indexKeys(store), keysBefore);
  // gone: its image, its layer, 2 trees (root and sub), 3 blobs of its own (shared.txt stays).
  t.is(report.byKind.image.count, 1);
  t.is(report.byKind.layer.count, 1);
  t.is(report.byKind.tree.count, 2);
  t.is(report.byKind.blob.count, 3);
  t.is(report.byKind.blob.bytes, 'gone'.length + 'gone too'.length + INLINE_MAX + 20);
  t.is(report.objects, 7);
  t.is(await store.getImage(gone.image), undefined);
  const goneBig = hashBytes(Buffer.from(bytesOf('g', INLINE_MAX + 20)));
  t.false(await store.hasBlob(goneBig));
  await t.throwsAsync(fs.access(store.objectPath(goneBig)), {code: 'ENOENT'});
  t.truthy(await store.getImage(kept.image));
  t.deepEqual(await store.readBlob((await findBlob(store, bytesOf('k', INLINE_MAX + 10)))!), Buffer.from(bytesOf('k', INLINE_MAX + 10)));
});

test('blobs no tree names (a killed import\'s) go, counted by their values, with their object files', async t => {
  const store = await openTempStore(t);
  const small = Buffer.from('written, never named');
  const big = Buffer.from(bytesOf('loose', INLINE_MAX + 3));
  const [a, b] = [await store.putBlob(small), await store.putBlob(big)];
  await store.index.flush();
  const report = await collectGarbage(store);
  t.is(report.byKind.blob.count, 2);
  t.is(report.byKind.blob.bytes, small.length + big.length);
  t.is(report.byKind.orphanFile.count, 0);
  t.false(await store.hasBlob(a));
  t.false(await store.hasBlob(b));
  await t.throwsAsync(fs.access(store.objectPath(b)), {code: 'ENOENT'});
});

test('a second gc in a row removes nothing', async t => {
  const store = await openTempStore(t);
  await imageOf(t, store, {'a': 'x', 'big': bytesOf('b', INLINE_MAX + 1)}, {tag: 'a:1'});
  await imageOf(t, store, {'b': 'y', 'big': bytesOf('c', INLINE_MAX + 1)});
  await fs.writeFile(path.join(store.dir, 'tmp', 'blob-999999999-abcdef'), 'stale');
  t.true((await collectGarbage(store)).objects > 0);
  const second = await collectGarbage(store);
  t.is(second.objects, 0);
  t.is(second.bytes, 0);
});

test('dry-run reports what gc would remove and removes nothing', async t => {
  const store = await openTempStore(t);
  await imageOf(t, store, {'a': 'x'}, {tag: 'a:1'});
  await imageOf(t, store, {'b': 'y', 'big': bytesOf('d', INLINE_MAX + 1)});
  const orphan = store.objectPath(`b3:${'ab'.repeat(32)}` as never);
  await fs.mkdir(path.dirname(orphan), {recursive: true});
  await fs.writeFile(orphan, 'orphan');
  const keys = await indexKeys(store);
  const dry = await collectGarbage(store, {dryRun: true});
  t.deepEqual(await indexKeys(store), keys);
  await t.notThrowsAsync(fs.access(orphan));
  const real = await collectGarbage(store);
  t.deepEqual({...real, dryRun: true}, dry);
});

test('object files that no index entry names are swept, indexed ones are kept', async t => {
  const store = await openTempStore(t);
  const big = bytesOf('kept', INLINE_MAX + 5);
  await imageOf(t, store, {'big': big}, {tag: 'a:1'});
  const orphan = store.objectPath(`b3:${'cd'.repeat(32)}` as never);
  await fs.mkdir(path.dirname(orphan), {recursive: true});
  await fs.writeFile(orphan, 'left by a crash');
  const report = await collectGarbage(store);
  t.is(report.byKind.orphanFile.count, 1);
  t.is(report.byKind.orphanFile.bytes, 'left by a crash'.length);
  await t.throwsAsync(fs.access(orphan), {code: 'ENOENT'});
  t.deepEqual((await store.readBlob((await findBlob(store, big))!)).toString(), big);
});

test('temporary files of dead processes go, those of live ones stay', async t => {
  const store = await openTempStore(t);
  const dead = path.join(store.dir, 'tmp', 'blob-2147483646-0123abcd');
  const mine = store.tmpPath('blob');
  await fs.writeFile(dead, 'x');
  await fs.writeFile(mine, 'y');
  const report = await collectGarbage(store);
  t.is(report.byKind.tmpFile.count, 1);
  await t.throwsAsync(fs.access(dead));
  await t.notThrowsAsync(fs.access(mine));
});

test('pins keep an untagged image or layer; unpinning lets gc take them', async t => {
  const store = await openTempStore(t);
  const img = await imageOf(t, store, {'a': 'pinned image'});
  const lay = await imageOf(t, store, {'b': 'pinned layer'});
  await addPin(store, img.image);
  await addPin(store, lay.layer, 'layer');
  const first = await collectGarbage(store);
  t.is(first.byKind.image.count, 1); // lay's image record: the pin holds its layer only
  t.truthy(await store.getImage(img.image));
  t.truthy(await store.getLayer(lay.layer));
  await removePin(store, img.image);
  await removePin(store, lay.layer, 'layer');
  const second = await collectGarbage(store);
  t.is(second.byKind.layer.count, 2);
  t.is(await store.getImage(img.image), undefined);
});

test('containers keep their image and their writable layer; a directory without a record goes', async t => {
  const store = await openTempStore(t);
  const img = await imageOf(t, store, {'a': 'used by a container'});
  await store.putContainer({id: 'c1', image: img.image, created: new Date().toISOString()});
  await fs.mkdir(store.upperDir('c1'), {recursive: true});
  await fs.mkdir(store.upperDir('c2'), {recursive: true});
  const report = await collectGarbage(store);
  t.is(report.byKind.image.count, 0);
  t.is(report.byKind.containerDir.count, 1);
  await t.notThrowsAsync(fs.access(store.upperDir('c1')));
  await t.throwsAsync(fs.access(store.upperDir('c2')));
});

test('a live lease keeps what it protects; a lease of a dead process expires', async t => {
  const store = await openTempStore(t);
  const held = await imageOf(t, store, {'a': 'in progress'});
  const lease = Lease.acquire(store.dir, 'test');
  lease.protect([layerKey(held.layer)]);
  const dead = {pid: 2147483646, host: (await import('node:os')).hostname(), created: new Date().toISOString(), label: 'killed'};
  await fs.writeFile(path.join(leaseDir(store.dir), '2147483646-dead'), `${JSON.stringify(dead)}\n${imageKey(held.image)}\n`);
  const report = await collectGarbage(store);
  t.is(report.byKind.lease.count, 1);
  t.is(report.byKind.image.count, 1);
  t.truthy(await store.getLayer(held.layer));
  t.deepEqual(await fs.readdir(leaseDir(store.dir)).then(names => names.filter(n => n.startsWith('2147483646-'))), [], 'the dead lease is removed');
  lease.release();
  t.is((await collectGarbage(store)).byKind.layer.count, 1);
});

test('flattened stacks of live image prefixes stay, others go', async t => {
  const store = await openTempStore(t);
  const base = await imageOf(t, store, {'a': 'base'});
  const top = await imageOf(t, store, {'b': 'top'}, {below: [base.layer], tag: 'top:1'});
  const lone = await imageOf(t, store, {'c': 'lone'});
  const flatTree = await store.putTree({mode: 0o755, uid: 0, gid: 0, mtime: 0, opaque: false, entries: []});
  await store.putFlat([base.layer, top.layer], flatTree);
  await store.putFlat([base.layer], base.layer);
  await store.putFlat([lone.layer, base.layer], flatTree);
  const report = await collectGarbage(store);
  t.is(report.byKind.flat.count, 1);
  t.is(await store.getFlat([base.layer, top.layer]), flatTree);
  t.is(await store.getFlat([base.layer]), base.layer);
  t.is(await store.getFlat([lone.layer, base.layer]), undefined);
});

async function findBlob(store: import('../src/index.js').Store, content: string) {
  const {hashBytes} = await import('../src/index.js');
  const d = hashBytes(Buffer.from(content));
  return (await store.hasBlob(d)) ? d : undefined;
}

test('treeRefs reads the same edges and file bytes as decodeTree, and refuses a damaged tree', async t => {
  const {treeRefs} = await import('../src/maintenance/graph.js');
  const {encodeTree, decodeTree, sortEntries} = await import('../src/objects/tree.js');
  const blob = hashBytes(Buffer.from('x'));
  const sub = hashBytes(Buffer.from('sub'));
  const meta = {mode: 0o644, uid: 1, gid: 2, mtime: 3};
  const tree = {
    ...meta, mode: 0o755, opaque: true, xattrs: {'user.a': Buffer.from('v')},
    entries: sortEntries([
      {name: 'f', kind: 'file' as const, ...meta, size: 10, blob, xattrs: {'user.b': Buffer.from('ww'), 'user.c': Buffer.alloc(0)}},
      {name: 'h', kind: 'hardlink' as const, ...meta, size: 10, blob, target: '/f'},
      {name: 'd', kind: 'dir' as const, tree: sub},
      {name: 'l', kind: 'symlink' as const, ...meta, target: '../somewhere'},
      {name: 'w', kind: 'whiteout' as const},
      {name: 'c', kind: 'char' as const, ...meta, devmajor: 1, devminor: 3},
      {name: 'p', kind: 'fifo' as const, ...meta},
    ]),
  };
  const bytes = encodeTree(tree);
  const want = decodeTree(bytes).entries.flatMap(e => e.kind === 'dir' ? [treeKey(e.tree)] : e.kind === 'file' || e.kind === 'hardlink' ? [blobKey(e.blob)] : []);
  t.deepEqual(treeRefs(bytes, 'tree'), {refs: want, fileBytes: 10});
  t.throws(() => treeRefs(bytes.subarray(0, bytes.length - 3), 'tree'), {code: 'OBJECT_CORRUPT'});
  t.throws(() => treeRefs(Buffer.concat([bytes, Buffer.of(0)]), 'tree'), {code: 'OBJECT_CORRUPT'});
});

test('treeRefsAt gives what decodeTree reads, and refuses every truncation and every byte changed that breaks the layout', async t => {
  const {encodeTree, decodeTree, sortEntries, treeRefsAt, forEachTreeRefAt, REF_BLOB, REF_TREE, REF_HARDLINK} = await import('../src/objects/tree.js');
  const [a, b, sub] = ['a', 'b', 'sub'].map(x => hashBytes(Buffer.from(x))) as [Digest, Digest, Digest];
  const meta = {mode: 0o644, uid: 1, gid: 2, mtime: 3};
  const bytes = encodeTree({...meta, mode: 0o755, opaque: false, xattrs: {'user.r': Buffer.from('root')}, entries: sortEntries([
    {name: 'a', kind: 'file' as const, ...meta, size: 2 ** 40 + 5, blob: a, xattrs: {'user.x': Buffer.from('xyz')}},
    {name: 'b', kind: 'hardlink' as const, ...meta, size: 7, blob: b, target: '/a'},
    {name: 'd', kind: 'dir' as const, tree: sub},
    {name: 'l', kind: 'symlink' as const, ...meta, target: 'a'},
    {name: 'w', kind: 'whiteout' as const},
  ])});
  const {out, count, fileBytes} = treeRefsAt(bytes, 'tree', []);
  const hexAt = (at: number) => `b3:${bytes.toString('hex', at, at + 32)}`;
  const got = [];
  for (let i = 0; i < count; i += 3) got.push([out[i], hexAt(out[i + 1]!), out[i + 2]]);
  const kinds = {file: REF_BLOB, hardlink: REF_HARDLINK, dir: REF_TREE} as Record<string, number>;
  const want = decodeTree(bytes).entries.flatMap(e => e.kind === 'dir' ? [[REF_TREE, e.tree, 0]] : e.kind === 'file' || e.kind === 'hardlink' ? [[kinds[e.kind], e.blob, e.size]] : []);
  t.deepEqual(got, want);
  t.is(fileBytes, 2 ** 40 + 5);
  const each: unknown[] = [];
  t.is(forEachTreeRefAt(bytes, 'tree', (kind, at, size) => { each.push([kind, hexAt(at), size]); }), fileBytes);
  t.deepEqual(each, [['blob', a, 2 ** 40 + 5], ['hardlink', b, 7], ['tree', sub, 0]]);
  for (let n = 0; n < bytes.length; n++) t.throws(() => treeRefsAt(bytes.subarray(0, n), 'tree', []), {code: 'OBJECT_CORRUPT'}, `cut at ${n}`);
  // A changed byte either breaks the layout (OBJECT_CORRUPT) or leaves one whose digests all lie inside the encoding.
  for (let i = 0; i < bytes.length; i++) {
    for (const v of [0, 1, 0x7f, 0xff]) {
      const changed = Buffer.from(bytes);
      changed[i] = v;
      let r;
      try {
        r = treeRefsAt(changed, 'tree', []);
      } catch (err) {
        t.is((err as {code?: string}).code, 'OBJECT_CORRUPT');
        continue;
      }
      for (let k = 0; k < r.count; k += 3) t.true(r.out[k + 1]! >= 0 && r.out[k + 1]! + 32 <= changed.length, `byte ${i} = ${v}`);
    }
  }
});

test('a digest set finds the digests of a tree\'s references it holds, as bytes and as strings alike', async t => {
  const {DigestSet} = await import('../src/maintenance/keySet.js');
  const {encodeTree, sortEntries, treeRefsAt, REF_BLOB} = await import('../src/objects/tree.js');
  const digests = Array.from({length: 40}, (_, i) => hashBytes(Buffer.from(`blob ${i}`)));
  const meta = {mode: 0o644, uid: 0, gid: 0, mtime: 1};
  const bytes = encodeTree({...meta, mode: 0o755, opaque: false, entries: sortEntries([
    ...digests.map((blob, i) => ({name: `f${i}`, kind: 'file' as const, ...meta, size: 100 + i, blob})),
    {name: 'd', kind: 'dir' as const, tree: digests[3]!}, // a tree's digest, not a file's: not asked about
  ])});
  const {out, count} = treeRefsAt(bytes, 'tree', []);
  for (const [set, asBytes] of [[DigestSet.ofBytes(), true], [new DigestSet(), false]] as const) {
    const held = [digests[3]!, digests[17]!, digests[39]!, hashBytes(Buffer.from('named by no entry'))];
    for (const d of held) set.add(d);
    const found: [string, number][] = [];
    set.eachRefHeld(bytes, out, count, REF_BLOB, (i, size) => { found.push([set.digestAt(i), size]); });
    t.deepEqual(found.sort(), [[digests[17]!, 117], [digests[3]!, 103], [digests[39]!, 139]].sort() as [string, number][]);
    t.is(set.inBytes, asBytes);
  }
});

test('a mark reads a tree\'s blobs as digest bytes: forEachEdge over an encoded tree names what treeRefs and edgesOf name', async t => {
  const {TreeTable, edgesOf, forEachEdge, treeRefs} = await import('../src/maintenance/graph.js');
  const {markEdges} = await import('../src/maintenance/gc.js');
  const {encodeTree, sortEntries} = await import('../src/objects/tree.js');
  const [a, b, sub] = ['a', 'b', 'sub'].map(x => hashBytes(Buffer.from(x))) as [Digest, Digest, Digest];
  const meta = {mode: 0o644, uid: 0, gid: 0, mtime: 1};
  const bytes = encodeTree({...meta, mode: 0o755, opaque: false, entries: sortEntries([
    {name: 'a', kind: 'file' as const, ...meta, size: 1, blob: a},
    {name: 'b', kind: 'hardlink' as const, ...meta, size: 1, blob: b, target: '/a'},
    {name: 'd', kind: 'dir' as const, tree: sub},
  ])});
  const root = hashBytes(bytes);
  const trees = new TreeTable();
  trees.addEncoded(root, bytes);
  const g = {trees, images: new Map(), flats: new Map(), tags: new Map(), containers: new Map(), containerNames: new Map()};
  const got: string[] = [];
  forEachEdge(g)(treeKey(root), {key: k => { got.push(k); }, blobAt: (buf, at) => { got.push(blobKey(`b3:${buf.toString('hex', at, at + 32)}` as Digest)); }});
  t.deepEqual(got, treeRefs(bytes, 'tree').refs);
  t.deepEqual(edgesOf(g)(treeKey(root)), got);
  const live = markEdges([treeKey(root)], forEachEdge(g));
  t.true([blobKey(a), blobKey(b), treeKey(sub), treeKey(root)].every(k => live.has(k)));
  t.is(live.size, 4);
});

test('gc keeps the object file of a blob a live tree names even when its index entry is lost, for a repair', async t => {
  const store = await openTempStore(t);
  const big = bytesOf('named', INLINE_MAX + 7);
  await imageOf(t, store, {'big': big}, {tag: 'a:1'});
  const d = hashBytes(Buffer.from(big));
  await store.index.commit([{type: 'del', key: blobKey(d)}]);
  const report = await collectGarbage(store);
  t.is(report.byKind.orphanFile.count, 0);
  await t.notThrowsAsync(fs.access(store.objectPath(d)));
  t.true((await verifyStore(store)).problems.length > 0);
});

test('a damaged tree that nothing reaches goes with the rest; a damaged live tree stops gc and removes nothing', async t => {
  const store = await openTempStore(t);
  const kept = await imageOf(t, store, {'a.txt': 'kept', 'sub/b.txt': 'kept below'}, {tag: 'kept:1'});
  const gone = await imageOf(t, store, {'c.txt': 'gone', 'sub/d.txt': 'gone below'});
  const subOf = async (layer: Digest) => {
    const e = (await store.getTree(layer, {cache: false})).entries.find(x => x.name === 'sub');
    return e?.kind === 'dir' ? e.tree : t.fail('no sub directory') as never;
  };
  const damage = async (tree: Digest) => {
    const bytes = store.index.getSync(treeKey(tree))!;
    await store.index.commit([{type: 'put', key: treeKey(tree), value: bytes.subarray(0, bytes.length - 3)}]);
  };
  // gc reads a tree only when its mark reaches it: the garbage one is removed unread.
  const goneSub = await subOf(gone.layer);
  await damage(goneSub);
  const report = await collectGarbage(store);
  t.is(report.byKind.tree.count, 2);
  t.is(store.index.getSync(treeKey(goneSub)), undefined);
  // A live tree that does not decode: gc cannot know what it names, so it stops.
  await damage(await subOf(kept.layer));
  const keys = await indexKeys(store);
  await t.throwsAsync(collectGarbage(store), {code: 'OBJECT_CORRUPT'});
  t.deepEqual(await indexKeys(store), keys);
});

test('pin rm with an id prefix that two pins share is refused and removes neither', async t => {
  const store = await openTempStore(t);
  const seen = new Map<string, Digest>();
  let pair: [Digest, Digest] | undefined;
  const {layer} = await imageOf(t, store, {'f': 'content'});
  for (let i = 0; !pair; i++) { // images whose ids share 4 hex digits (a birthday search: a few hundred)
    const image = await store.putImage({layers: [layer], config: {labels: {n: String(i)}}});
    const prefix = image.slice(3, 7);
    const other = seen.get(prefix);
    if (other) pair = [other, image];
    seen.set(prefix, image);
  }
  await addPin(store, pair[0]);
  await addPin(store, pair[1]);
  await t.throwsAsync(removePin(store, pair[0].slice(3, 7)), {code: 'AMBIGUOUS_ID'});
  t.is((await listPins(store)).length, 2);
  t.like(await removePin(store, pair[1].slice(3, 20)), {id: pair[1]});
  t.deepEqual((await listPins(store)).map(p => p.id), [pair[0]]);
});

test('edgesOf follows every family of keys gc, df and verify walk, and nothing the graph lacks', async t => {
  const {edgesOf} = await import('../src/maintenance/graph.js');
  const {chainId} = await import('../src/objects/image.js');
  const {containerKey, containerNameKey, flatKey, pinKey, tagKey} = await import('../src/index/keys.js');
  const {parseTag} = await import('../src/index.js');
  const [l1, l2, root, blob, merged] = ['l1', 'l2', 'root', 'blob', 'merged'].map(s => hashBytes(Buffer.from(s))) as [Digest, Digest, Digest, Digest, Digest];
  const image = hashBytes(Buffer.from('image'));
  const chain = chainId([l1, l2])!;
  const tag = parseTag('app:1');
  const edges = edgesOf({
    trees: new Map([[root, [blobKey(blob)]]]),
    images: new Map([[image, {layers: [l1, l2], config: {}}]]),
    flats: new Map([[chain, merged]]),
    tags: new Map([[tag, image]]),
    containers: new Map([['c1', {id: 'c1', image, created: '2026-01-01T00:00:00.000Z'}]]),
    containerNames: new Map([['web', 'c1']]),
  });
  t.deepEqual(edges(imageKey(image)), [layerKey(l1), layerKey(l2), flatKey(chain)]); // l1 alone has no flat
  t.deepEqual(edges(layerKey(l1)), [treeKey(l1)]);
  t.deepEqual(edges(flatKey(chain)), [treeKey(merged)]);
  t.deepEqual(edges(treeKey(root)), [blobKey(blob)]);
  t.deepEqual(edges(blobKey(blob)), []);
  t.deepEqual(edges(tagKey(tag)), [imageKey(image)]);
  t.deepEqual(edges(containerKey('c1')), [imageKey(image)]);
  t.deepEqual(edges(containerNameKey('web')), [containerKey('c1')]);
  t.deepEqual(edges(pinKey('layer', l2)), [layerKey(l2)]);
  t.deepEqual([edges(treeKey(blob)), edges(imageKey(blob)), edges(tagKey(parseTag('gone:1')))], [[], [], []]);
});

test('a gc of another handle keeps what a live handle wrote and has not named yet, content and records alike', async t => {
  const writer = await openTempStore(t);
  const dir = await tempDir(t);
  await writeTree(dir, {'a.txt': 'written, not yet named', 'big.bin': 'x'.repeat(INLINE_MAX + 1)});
  const {layer} = await importDirectory(writer, dir); // blobs, trees and the layer record: no image, no tag
  const collector = await Store.open(writer.dir);
  t.teardown(() => collector.close());
  const first = await collectGarbage(collector);
  t.is(first.byKind.layer.count + first.byKind.tree.count + first.byKind.blob.count, 0, 'the writer\'s lease keeps all of it');
  // The writer names it now: its image needs the layer record gc ran beside.
  await t.notThrowsAsync(writer.putImage({layers: [layer.id], config: {}}));
  await writer.close();
  // The image was committed after the snapshot gc reads (the writer had the index): this gc
  // keeps it and what it names, so nothing is left naming what is gone; the next one takes both.
  const second = await collectGarbage(collector);
  t.deepEqual((await verifyStore(collector)).problems, []);
  const third = await collectGarbage(collector);
  t.is(second.byKind.layer.count + third.byKind.layer.count, 1, 'once the writer is gone, an untagged image and its layer are garbage');
  t.is(second.byKind.image.count + third.byKind.image.count, 1);
  t.deepEqual((await verifyStore(collector)).problems, []);
});
