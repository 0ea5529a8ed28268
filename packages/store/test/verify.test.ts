import * as fs from 'node:fs/promises';
import test from 'ava';
import {type Digest, hashBytes, INLINE_MAX, parseTag, type Store, verifyStore} from '../src/index.js';
import {blobKey, imageKey, tagKey, treeKey} from '../src/index/keys.js';
import {bytesOf, imageOf, indexKeys} from './_images.js';
import {openTempStore} from './_helpers.js';

async function flipInline(store: Store, d: Digest): Promise<void> {
  const v = Buffer.from((await store.index.get(blobKey(d)))!);
  v[1]! ^= 0x01;
  await store.index.commit([{type: 'put', key: blobKey(d), value: v}]);
}

async function flipFile(store: Store, d: Digest): Promise<void> {
  const file = store.objectPath(d);
  await fs.chmod(file, 0o644);
  const bytes = await fs.readFile(file);
  bytes[bytes.length >> 1]! ^= 0x80;
  await fs.writeFile(file, bytes);
}

test('a clean store has no problems', async t => {
  const store = await openTempStore(t);
  await imageOf(t, store, {'a': 'x', 'sub/b': bytesOf('b', INLINE_MAX + 1)}, {tag: 'a:1'});
  const r = await verifyStore(store);
  t.deepEqual(r.problems, []);
  t.is(r.remaining, 0);
  t.true(r.checked >= 6);
});

test('verify finds a flipped byte in an inline blob and names the tree and image', async t => {
  const store = await openTempStore(t);
  const img = await imageOf(t, store, {'a': 'inline bytes'}, {tag: 'a:1'});
  const d = hashBytes(Buffer.from('inline bytes'));
  await flipInline(store, d);
  const r = await verifyStore(store);
  t.is(r.problems.length, 1);
  t.like(r.problems[0], {object: blobKey(d), kind: 'corrupt', referencedBy: [treeKey(img.layer)]});
  t.deepEqual(r.damagedImages, [{id: img.image, tags: ['a:1']}]);
});

test('verify finds a flipped byte in an object file', async t => {
  const store = await openTempStore(t);
  const content = bytesOf('f', INLINE_MAX + 1000);
  await imageOf(t, store, {'f': content}, {tag: 'a:1'});
  const d = hashBytes(Buffer.from(content));
  await flipFile(store, d);
  const r = await verifyStore(store);
  t.deepEqual(r.problems.map(p => [p.object, p.kind]), [[blobKey(d), 'corrupt']]);
});

test('verify finds a missing tree and who names it', async t => {
  const store = await openTempStore(t);
  const img = await imageOf(t, store, {'sub/x': 'deep'}, {tag: 'a:1'});
  const root = await store.getTree(img.layer);
  const sub = root.entries[0]!;
  if (sub.kind !== 'dir') throw new TypeError('want a dir');
  await store.index.commit([{type: 'del', key: treeKey(sub.tree)}]);
  const r = await verifyStore(store);
  t.deepEqual(r.problems.map(p => [p.object, p.kind, p.referencedBy]), [[treeKey(sub.tree), 'missing', [treeKey(img.layer)]]]);
  t.is(r.damagedImages.length, 1);
});

test('verify finds a dangling tag', async t => {
  const store = await openTempStore(t);
  const ghost = `b3:${'0'.repeat(64)}` as Digest;
  await store.index.commit([{type: 'put', key: tagKey(parseTag('ghost:1')), value: Buffer.from(ghost)}]);
  const r = await verifyStore(store);
  t.deepEqual(r.problems.map(p => [p.object, p.kind, p.referencedBy]), [[imageKey(ghost), 'missing', [tagKey(parseTag('ghost:1'))]]]);
});

test('repair removes only the damage and a re-import restores the image', async t => {
  const store = await openTempStore(t);
  const content = bytesOf('r', INLINE_MAX + 10);
  const files = {'f': content, 'ok': 'fine'};
  const bad = await imageOf(t, store, files, {tag: 'bad:1'});
  const good = await imageOf(t, store, {'g': 'good', 'ok': 'fine'}, {tag: 'good:1'});
  const d = hashBytes(Buffer.from(content));
  await flipFile(store, d);
  await store.index.commit([{type: 'put', key: tagKey(parseTag('ghost:1')), value: Buffer.from(`b3:${'1'.repeat(64)}`)}]);
  const before = await indexKeys(store);

  const r = await verifyStore(store, {repair: true});
  t.deepEqual(r.damagedImages, [{id: bad.image, tags: ['bad:1']}]);
  t.deepEqual(await indexKeys(store), before.filter(k => k !== blobKey(d) && k !== tagKey(parseTag('ghost:1'))));
  await t.throwsAsync(fs.access(store.objectPath(d)), {code: 'ENOENT'});
  t.is(r.remaining, 1); // the tree still names the removed blob
  t.is((await store.readBlob(hashBytes(Buffer.from('good')))).toString(), 'good');
  t.truthy(await store.getImage(good.image));

  await imageOf(t, store, files);
  t.deepEqual((await verifyStore(store)).problems, []);
});

test('repair indexes again a blob whose entry was lost but whose object file is intact', async t => {
  const store = await openTempStore(t);
  const content = bytesOf('lost', INLINE_MAX + 10);
  await imageOf(t, store, {'f': content}, {tag: 'a:1'});
  const d = hashBytes(Buffer.from(content));
  await store.index.commit([{type: 'del', key: blobKey(d)}]);
  t.deepEqual((await verifyStore(store)).problems.map(p => [p.object, p.kind]), [[blobKey(d), 'missing']]);
  const r = await verifyStore(store, {repair: true});
  t.is(r.remaining, 0);
  t.is((await store.readBlob(d)).toString(), content);
  t.deepEqual((await verifyStore(store)).problems, []);
});
