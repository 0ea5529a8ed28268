import test from 'ava';
import {type Digest, type Store, type TagRef, StoreError, parseTag, removeImages} from '../src/index.js';
import {openTempStore} from './_helpers.js';

/** An image of one empty layer, told apart by its history; tagged with each of `tags`. */
async function imageWith(store: Store, label: string, ...tags: string[]): Promise<Digest> {
  const layer = await store.putTree({mode: 0o755, uid: 0, gid: 0, mtime: 0, opaque: false, entries: []});
  await store.putLayer({id: layer, entries: 0, bytes: 0, created: '2026-01-01T00:00:00.000Z'});
  const id = await store.putImage({layers: [layer], config: {history: [{createdBy: label}]}});
  for (const t of tags) await store.setTag(parseTag(t), id);
  return id;
}

const tagsNow = async (store: Store): Promise<string[]> => (await store.listTags()).map(t => t.tag).sort();

test('deleteImage refuses an image a container uses, and keeps its record and tags', async t => {
  const store = await openTempStore(t);
  const id = await imageWith(store, 'a', 'a:1');
  await store.putContainer({id: 'c0ffee', image: id, created: '2026-01-01T00:00:00.000Z', name: 'web'});
  const err = await t.throwsAsync(store.deleteImage(id), {instanceOf: StoreError});
  t.is(err?.code, 'IN_USE');
  t.regex(err?.message ?? '', /container web/);
  t.truthy(await store.getImage(id));
  t.deepEqual(await tagsNow(store), ['a:1']);
  await store.deleteContainer((await store.getContainer('c0ffee'))!);
  t.deepEqual(await store.deleteImage(id), ['a:1' as TagRef]);
});

test('removeImages untags when other tags remain, and deletes the image with its last tag or by id', async t => {
  const store = await openTempStore(t);
  const a = await imageWith(store, 'a', 'a:1', 'a:latest');
  const b = await imageWith(store, 'b', 'b:1');
  t.deepEqual(await removeImages(store, ['a:1']), [{image: a, untagged: ['a:1'], deleted: false}]);
  t.deepEqual(await removeImages(store, ['a', b.slice(0, 10)]), [{image: a, untagged: ['a:latest'], deleted: true}, {image: b, untagged: ['b:1'], deleted: true}]);
  t.deepEqual([await store.listImages(), await tagsNow(store)], [[], []]);
});

test('removeImages removes nothing when one reference is refused', async t => {
  const store = await openTempStore(t);
  const a = await imageWith(store, 'a', 'a:1');
  const used = await imageWith(store, 'used', 'used:1', 'used:2');
  await store.putContainer({id: 'c0ffee', image: used, created: '2026-01-01T00:00:00.000Z'});
  // Untagging one of two tags leaves the image: allowed even while a container uses it.
  t.deepEqual(await removeImages(store, ['used:1']), [{image: used, untagged: ['used:1'], deleted: false}]);
  for (const refs of [['a:1', 'used:2'], ['a:1', 'nope:1'], ['a:1', used]]) {
    await t.throwsAsync(removeImages(store, refs), {instanceOf: StoreError});
    t.deepEqual(await tagsNow(store), ['a:1', 'used:2'], refs.join(' '));
    t.truthy(await store.getImage(a));
  }
});
