import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test from 'ava';
import {BackgroundSync} from '../src/import/BackgroundSync.js';
import {tempDir} from './_helpers.js';

test('a background sync answers each request with one shell, true when sync -f succeeds, false once closed', async t => {
  const dir = await tempDir(t);
  await fs.mkdir(path.join(dir, 'tmp'));
  const syncs = new BackgroundSync(dir);
  syncs.start();
  t.deepEqual(await Promise.all([syncs.sync(), syncs.sync(), syncs.sync()]), [true, true, true]);
  t.true(await syncs.sync());
  syncs.close();
  t.false(await syncs.sync()); // the caller then fsyncs each file
});

test('a background sync answers false when sync -f fails, so the caller fsyncs each file', async t => {
  const syncs = new BackgroundSync(path.join(await tempDir(t), 'no-store')); // sync -f of a missing path fails
  t.teardown(() => syncs.close());
  t.false(await syncs.sync());
  t.false(await syncs.sync());
});
