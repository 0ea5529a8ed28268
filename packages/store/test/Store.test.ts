import test from 'ava';
import {importDirectory} from '../src/index.js';
import {openTempStore, tempDir, writeTree} from './_helpers.js';

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
