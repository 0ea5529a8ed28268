import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test from 'ava';
import {Index} from '../src/index/Index.js';
import {tempDir} from './_helpers.js';

/** Opens an index; the directory above it stands for the store (where the holder file goes). */
const open = (location: string, lockTimeoutMs?: number) => Index.open(location, {holderDir: path.dirname(location), ...(lockTimeoutMs === undefined ? {} : {lockTimeoutMs})});

async function openTempIndex(t: import('ava').ExecutionContext): Promise<{index: Index; location: string}> {
  const location = path.join(await tempDir(t, 'strata-index-'), 'index');
  const index = await open(location);
  t.teardown(() => index.close());
  return {index, location};
}

/** Bytes in LevelDB's write-ahead logs: what has reached LevelDB, flushed or not. */
async function logBytes(location: string): Promise<number> {
  let n = 0;
  for (const name of await fs.readdir(location)) if (name.endsWith('.log') && name !== 'LOG') n += (await fs.stat(path.join(location, name))).size;
  return n;
}

test('a queued write is readable at once, and durable once the index is closed', async t => {
  const {index, location} = await openTempIndex(t);
  t.true(index.queue('t:one', Buffer.from('1')));
  t.false(index.queue('t:one', Buffer.from('1')), 'a pending key is queued once');
  t.deepEqual(await index.get('t:one'), Buffer.from('1'));
  t.true(await index.has('t:one'));
  await index.close();
  const again = await open(location);
  t.teardown(() => again.close());
  t.deepEqual(await again.get('t:one'), Buffer.from('1'));
});

test('queued writes reach LevelDB by themselves past 5000 entries, not before', async t => {
  const {index, location} = await openTempIndex(t);
  const value = Buffer.alloc(100, 7);
  const empty = await logBytes(location);
  for (let i = 0; i < 4999; i++) index.queue(`b:${String(i).padStart(6, '0')}`, value);
  await new Promise(r => setTimeout(r, 200));
  t.is(await logBytes(location), empty, 'below the bound nothing is written');
  index.queue('b:last', value);
  const deadline = Date.now() + 30_000;
  while ((await logBytes(location)) < 5000 * value.length && Date.now() < deadline) await new Promise(r => setTimeout(r, 20));
  t.true((await logBytes(location)) >= 5000 * value.length, 'the 5000th entry starts a flush');
});

test('a commit is applied at once, and a deleted key is no longer known', async t => {
  const {index} = await openTempIndex(t);
  index.queue('b:x', Buffer.from('x'));
  await index.commit([{type: 'put', key: 'tag:a:1', value: Buffer.from('i')}]);
  t.true(await index.has('b:x'), 'a commit flushes queued content first');
  await index.commit([{type: 'del', key: 'b:x'}]);
  t.false(await index.has('b:x'));
  t.deepEqual((await index.scan('')).map(([k]) => k), ['tag:a:1']);
});

test('an index held by another handle is refused with STORE_LOCKED after the timeout', async t => {
  const {location} = await openTempIndex(t);
  const started = Date.now();
  await t.throwsAsync(open(location, 300), {code: 'STORE_LOCKED'});
  t.true(Date.now() - started >= 300, 'it waits for its turn first');
});

test('an index opens as soon as the handle that held it closes', async t => {
  const location = path.join(await tempDir(t, 'strata-index-'), 'index');
  const first = await open(location);
  const second = open(location, 30_000);
  await new Promise(r => setTimeout(r, 100));
  await first.close();
  const index = await second;
  t.teardown(() => index.close());
  t.true(index.isOpen);
});
