import test from 'ava';
import {Store, collectGarbage, importDirectory} from '../src/index.js';
import {openTempStore, tempDir, writeTree} from './_helpers.js';
import {blobKey, treeKey} from '../src/index/keys.js';
import {inlineBlobValue} from '../src/index/values.js';

test('putBlob stores identical bytes once', async t => {
  const store = await openTempStore(t);
  const before = store.writeCounters();
  t.is(await store.putBlob(Buffer.from('hi')), await store.putBlob(Buffer.from('hi')));
  t.is(store.writeCounters().objects - before.objects, 1);
});

test('importing the same directory twice stores nothing new and gives the same layer', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  await writeTree(dir, {'a.txt': 'alpha', 'sub/b.txt': 'beta', 'empty': null, 'big.bin': 'x'.repeat(200_000)});
  const first = await importDirectory(store, dir);
  const second = await importDirectory(store, dir);
  t.is(first.layer.id, second.layer.id);
  t.true(first.newBytes > 0);
  t.is(second.newBytes, 0);
  t.is(second.newObjects, 0);
});

test('flushes never overlap: blobs of a batch in flight stay visible while a second batch is queued', async t => {
  const store = await openTempStore(t);
  // Real LevelDB batches, each held a little before it is written, so flushes would overlap.
  let inFlight = 0, most = 0;
  // LevelDB under the index, reached past its privacy: the test holds each batch a while.
  const db = (store.index as unknown as {handle: {db: {batch: (...args: unknown[]) => unknown}}}).handle.db;
  const realBatch = db.batch.bind(db) as () => {write(): Promise<void>};
  db.batch = (...args: unknown[]) => {
    if (args.length > 0) return (realBatch as unknown as (...a: unknown[]) => unknown)(...args);
    const b = realBatch();
    const write = b.write.bind(b);
    b.write = async () => {
      most = Math.max(most, ++inFlight);
      await new Promise(r => setTimeout(r, 30));
      try { await write(); } finally { inFlight--; }
    };
    return b;
  };
  const first = await store.putBlob(Buffer.from('first'));
  const flushed = store.flush(); // a direct flush, in flight ...
  const later: Promise<unknown>[] = [];
  for (let i = 0; i < 5001; i++) later.push(store.putBlob(Buffer.from(`blob ${i}`))); // ... while the queue fills past a batch
  await Promise.all(later);
  await new Promise(r => setTimeout(r, 5)); // the background flush of the second batch has started
  t.true(await store.hasBlob(first), 'a blob in flight is not denied');
  t.true(await store.hasBlob(await store.putBlob(Buffer.from('blob 0'))));
  await flushed;
  await store.flush();
  t.is(most, 1);
});

test('a tree that gc deleted is not served from the handle\'s cache', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  await writeTree(dir, {'a.txt': 'alpha', 'sub/b.txt': 'beta'});
  const {layer} = await importDirectory(store, dir);
  await store.getTree(layer.id); // cached
  await collectGarbage(store); // nothing names the layer: it goes, its trees too
  await t.throwsAsync(store.getTree(layer.id), {code: 'OBJECT_MISSING'});
});

test('an inline blob whose bytes do not hash to its name is refused on read', async t => {
  const store = await openTempStore(t);
  const d = await store.putBlob(Buffer.from('good bytes'));
  await store.index.commit([{type: 'put', key: blobKey(d), value: inlineBlobValue(Buffer.from('evil bytes'))}]);
  await t.throwsAsync(store.readBlob(d), {code: 'OBJECT_CORRUPT'});
  await t.throwsAsync(async () => { for await (const _ of await store.openBlob(d)); }, {code: 'OBJECT_CORRUPT'});
});

test('getTreeMeta gives a tree\'s own metadata without its entries, checked against its digest', async t => {
  const store = await openTempStore(t);
  const blob = await store.putBlob(Buffer.alloc(0));
  const entries = Array.from({length: 500}, (_, i) => ({name: `f${String(i).padStart(3, '0')}`, kind: 'file' as const, mode: 0o644, uid: 0, gid: 0, mtime: 1, size: 0, blob}));
  const xattrs = {'user.note': Buffer.from([0, 255, 1])};
  const d = await store.putTree({mode: 0o750, uid: 7, gid: 8, mtime: 1_700_000_000, xattrs, opaque: false, entries});
  const other = await store.putTree({mode: 0o755, uid: 0, gid: 0, mtime: 0, opaque: false, entries: []});
  const dir = store.dir;
  await store.close();
  const reopen = async () => {
    const s = await Store.open(dir);
    t.teardown(() => s.close());
    return s;
  };
  const fresh = await reopen(); // nothing cached
  const meta = await fresh.getTreeMeta(d);
  t.deepEqual({mode: meta.mode, uid: meta.uid, gid: meta.gid, mtime: meta.mtime, xattrs: meta.xattrs}, {mode: 0o750, uid: 7, gid: 8, mtime: 1_700_000_000, xattrs});
  // Bytes that do not hash to the name are refused, as getTree refuses them.
  await fresh.index.commit([{type: 'put', key: treeKey(d), value: (await fresh.index.get(treeKey(other)))!}]);
  await fresh.close();
  await t.throwsAsync((await reopen()).getTreeMeta(d), {code: 'OBJECT_CORRUPT'});
});
