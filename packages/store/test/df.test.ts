import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test from 'ava';
import {addPin, diskUsage, INLINE_MAX} from '../src/index.js';
import {bytesOf, imageOf} from './_images.js';
import {openTempStore} from './_helpers.js';

test('df figures equal the sums computed by hand', async t => {
  const store = await openTempStore(t);
  const big = INLINE_MAX + 100; // one blob in an object file, to count both kinds
  const a = await imageOf(t, store, {'a': bytesOf('a', 10), 's': bytesOf('s', 20), 'd1': bytesOf('d', 7), 'sub/d2': bytesOf('d', 7)}, {tag: 'a:1'});
  const b = await imageOf(t, store, {'b': bytesOf('b', big), 's': bytesOf('s', 20)}, {tag: 'b:1'});
  const c = await imageOf(t, store, {'c': bytesOf('c', 40)});
  await store.putContainer({id: 'k1', name: 'web', image: b.image, created: new Date().toISOString()});
  await fs.mkdir(store.upperDir('k1'), {recursive: true});
  await fs.writeFile(path.join(store.upperDir('k1'), 'new'), '12345');

  const u = await diskUsage(store);
  const byId = new Map(u.images.map(i => [i.id, i]));
  t.like(byId.get(a.image), {tags: ['a:1'], logical: 10 + 20 + 7 + 7, size: 37, shared: 20, unique: 17, reclaimable: 17});
  // b's blobs are kept by its tag and by the container as well: removing the image frees nothing.
  t.like(byId.get(b.image), {tags: ['b:1'], logical: big + 20, size: big + 20, shared: 20, unique: big, reclaimable: 0});
  // c is rooted by nothing: its bytes are garbage already.
  t.like(byId.get(c.image), {tags: [], logical: 40, size: 40, shared: 0, unique: 40, reclaimable: 40});
  t.deepEqual(u.containers, [{id: 'k1', name: 'web', image: b.image, shared: big + 20, unique: 5, reclaimable: 5}]);
  t.is(u.stored, 10 + 20 + 7 + big + 40);
  t.is(u.referenced, u.stored);
  t.is(u.logical, 44 + big + 20 + 40);
  t.is(u.ratio, u.logical / u.referenced);
  t.is(u.garbage, 40);
  t.is(u.blobs, 5);
});

test('a container whose image has no tag makes those blobs reclaimable with the container', async t => {
  const store = await openTempStore(t);
  const img = await imageOf(t, store, {'x': bytesOf('x', 33)});
  await store.putContainer({id: 'k2', image: img.image, created: new Date().toISOString()});
  const u = await diskUsage(store);
  t.like(u.containers[0], {shared: 33, unique: 0, reclaimable: 33});
  t.like(u.images[0], {reclaimable: 0});
  await addPin(store, img.image);
  const pinned = await diskUsage(store);
  t.like(pinned.containers[0], {reclaimable: 0});
  t.is(pinned.garbage, 0);
});
