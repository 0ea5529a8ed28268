import test from 'ava';
import {type Digest, LayerBuilder, type Store} from '@strata/store';
import {openImageView} from '../src/containers.js';
import {diffViews} from '../src/diff.js';
import {flattenLayers} from '../src/flatten.js';
import {UnionView} from '../src/UnionView.js';
import {openTempStore, vp} from './_helpers.js';

const META = {mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000};

/** Stores a layer built from path -> content without touching the host filesystem. */
async function putLayer(store: Store, files: Iterable<[string, string]>): Promise<Digest> {
  const builder = new LayerBuilder();
  for (const [p, content] of files) {
    const blob = await store.putBlob(Buffer.from(content));
    builder.leaf(p.slice(1).split('/'), {kind: 'file', ...META, size: Buffer.byteLength(content), blob});
  }
  const {root, entries, bytes} = await builder.write(store);
  await store.putLayer({id: root, entries, bytes, created: new Date(0).toISOString()});
  return root;
}

/** Counts the trees a store is asked for (cached or not): the work a walk does. */
function countTrees(store: Store): {readonly n: number} {
  const counter = {n: 0};
  const getTree = store.getTree.bind(store);
  store.getTree = async (d: Digest) => { counter.n++; return getTree(d); };
  return counter;
}

function* bigTree(): Generator<[string, string]> {
  // 10 x 10 x 100 = 10,000 files in 111 directories, and one deep path.
  for (let a = 0; a < 10; a++) for (let b = 0; b < 10; b++) for (let c = 0; c < 100; c++) yield [`/a${a}/b${b}/f${c}`, `${a}.${b}.${c}`];
  yield ['/deep/1/2/3/4/5/6/7/8/file', 'deep'];
}

test('a diff of two images reads only the directories on the way to a change', async t => {
  const store = await openTempStore(t);
  const base = await putLayer(store, bigTree());
  const change = await putLayer(store, [['/deep/1/2/3/4/5/6/7/8/file', 'changed'], ['/a3/b4/f50', 'changed too']]);
  const before = await store.putImage({layers: [base], config: {}});
  const after = await store.putImage({layers: [base, change], config: {}});
  const [a, b] = [await openImageView(store, before), await openImageView(store, after)];
  const trees = countTrees(store);
  let readdirs = 0;
  for (const view of [a, b]) {
    const readdir = view.readdir.bind(view);
    view.readdir = async p => { readdirs++; return readdir(p); };
  }
  const changes = await diffViews(a, b);
  t.deepEqual(changes.map(c => `${c.kind} ${c.path}`), [
    'C /a3', 'C /a3/b4', 'C /a3/b4/f50', 'C /deep', 'C /deep/1', 'C /deep/1/2', 'C /deep/1/2/3', 'C /deep/1/2/3/4', 'C /deep/1/2/3/4/5',
    'C /deep/1/2/3/4/5/6', 'C /deep/1/2/3/4/5/6/7', 'C /deep/1/2/3/4/5/6/7/8', 'C /deep/1/2/3/4/5/6/7/8/file',
  ]);
  // Two sides x (root + the 11 directories on the two changed paths); the other 99 directories are skipped.
  t.is(readdirs, 2 * 12);
  t.true(trees.n <= 2 * 13 * 12, `${trees.n} trees read`); // each listing reads its child dirs' trees for their metadata
});

test('a lookup through 1000 layers reads as many trees as through 1', async t => {
  const store = await openTempStore(t);
  const layers: Digest[] = [];
  for (let i = 0; i < 1000; i++) layers.push(await putTrees(store, [['/etc/deep/conf', `v${i}`], [`/l${i % 10}`, `${i}`]]));
  const memos = countFlatMemos(store);
  const one = await flattenLayers(store, layers.slice(0, 1));
  const all = await flattenLayers(store, layers);
  t.true(memos.n <= 1 + 1000 / 64 + 1, `${memos.n} memo writes`); // each is a synced index write
  const trees = countTrees(store);
  t.is(await flattenLayers(store, layers), all, 'the memo answers');
  t.is(trees.n, 0, 'a memoised stack reads no tree');
  const prefix = await UnionView.open(store, await flattenLayers(store, layers.slice(0, 999)));
  t.is((await prefix.readFile(vp('/etc/deep/conf'))).toString(), 'v998', 'a prefix of the stack is its own merge');
  const lookups: number[] = [];
  for (const root of [one, all]) {
    const view = await UnionView.open(store, root);
    const start = trees.n;
    t.is((await view.readFile(vp('/etc/deep/conf'))).toString(), root === one ? 'v0' : 'v999');
    lookups.push(trees.n - start);
  }
  t.is(lookups[1], lookups[0]);
  t.true(lookups[0]! <= 4, `${lookups[0]} trees per lookup`);
});

test('stacking a layer on a flattened image applies only that layer', async t => {
  const store = await openTempStore(t);
  const layers: Digest[] = [];
  for (let i = 0; i < 100; i++) layers.push(await putTrees(store, [[`/d${i}/f`, `${i}`]]));
  await flattenLayers(store, layers);
  const top = await putTrees(store, [['/top', 'top']]);
  const trees = countTrees(store);
  const root = await flattenLayers(store, [...layers, top]);
  t.true(trees.n <= 3, `${trees.n} trees read`); // the memoised base root and the new layer's root
  t.is((await (await UnionView.open(store, root)).readFile(vp('/d42/f'))).toString(), '42');
});

/** Stores a layer's trees (no layer record: flattening reads only trees). */
async function putTrees(store: Store, files: Iterable<[string, string]>): Promise<Digest> {
  const builder = new LayerBuilder();
  for (const [p, content] of files) {
    const blob = await store.putBlob(Buffer.from(content));
    builder.leaf(p.slice(1).split('/'), {kind: 'file', ...META, size: Buffer.byteLength(content), blob});
  }
  return (await builder.write(store)).root;
}

function countFlatMemos(store: Store): {readonly n: number} {
  const counter = {n: 0};
  const putFlat = store.putFlat.bind(store);
  store.putFlat = async (layers, tree) => { counter.n++; return putFlat(layers, tree); };
  return counter;
}
