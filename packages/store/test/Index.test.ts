import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs/promises';
import {createRequire} from 'node:module';
import * as path from 'node:path';
import test from 'ava';
import {Index} from '../src/index/Index.js';
import {tempDir} from './_helpers.js';

/** Opens an index; the directory above it stands for the store (where the holder file goes). */
const open = (location: string, lockTimeoutMs?: number) => {
  const dir = path.dirname(location);
  return Index.open(location, {holderDir: dir, snapshotDir: path.join(dir, 'tmp'), waitDir: path.join(dir, 'waiting'), ...(lockTimeoutMs === undefined ? {} : {lockTimeoutMs})});
};

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

test('an index held by another handle opens at once as a snapshot; a write waits for a holder that cannot let go, then is refused with STORE_LOCKED', async t => {
  const {index: holder, location} = await openTempIndex(t);
  await holder.commit([{type: 'put', key: 'tag:a:1', value: Buffer.from('one')}]);
  let done!: () => void;
  const busy = holder.exclusive(() => new Promise<void>(r => { done = r; })); // a check-and-commit that takes long
  t.teardown(() => { done(); return busy; });
  // The holder keeps the index until teardown: an open that waited for it would never return.
  // (Not timed: the snapshot's cost is the machine's, over 3 s once at load 33.)
  const reader = await open(location, 3000);
  t.teardown(() => reader.close());
  t.false(reader.holdsLock, 'it reads a snapshot');
  t.deepEqual(await reader.get('tag:a:1'), Buffer.from('one'), 'the snapshot has what was committed');
  const writing = Date.now();
  await t.throwsAsync(reader.commit([{type: 'put', key: 'tag:b:1', value: Buffer.from('two')}]), {code: 'STORE_LOCKED', message: /busy.*held it longer than 3 s/});
  t.true(Date.now() - writing >= 3000, 'it waits for its turn first');
});

test('a holder hands the index over to a process that waits for it, and takes it back for its next write', async t => {
  const location = path.join(await tempDir(t, 'strata-index-'), 'index');
  const first = await open(location);
  t.teardown(() => first.close());
  t.true(first.holdsLock);
  first.queue('b:pending', Buffer.from('p')); // not yet flushed: the hand-over flushes it
  const second = await open(location, 30_000);
  t.teardown(() => second.close());
  t.false(second.holdsLock);
  const started = Date.now();
  await second.commit([{type: 'put', key: 'tag:second:1', value: Buffer.from('2')}]);
  t.true(Date.now() - started < 10_000, 'the write did not wait for the holder to close');
  t.true(second.holdsLock);
  t.false(first.holdsLock, 'the holder reads a snapshot now');
  t.deepEqual(await first.get('b:pending'), Buffer.from('p'), 'its own writes are in its snapshot');
  t.deepEqual(await second.get('b:pending'), Buffer.from('p'), 'and reached the index before it let go');
  const back = first.commit([{type: 'put', key: 'tag:first:1', value: Buffer.from('1')}]);
  await back;
  t.true(first.holdsLock, 'its next write took the index back');
  t.deepEqual(await first.get('tag:second:1'), Buffer.from('2'), 'and it sees what the other wrote');
});

/**
 * Whether another process can open the LevelDB at `location` right now (it then closes it
 * again): LevelDB's own open, in a child, as another strata process would try it.
 */
function anotherProcessCanOpen(location: string): boolean {
  const level = createRequire(import.meta.url).resolve('level');
  const r = spawnSync(process.execPath, ['-e', `const db = new (require(${JSON.stringify(level)}).Level)(${JSON.stringify(location)});
    db.open().then(() => db.close().then(() => process.exit(0)), err => process.exit(err.cause?.code === 'LEVEL_LOCKED' ? 3 : 1))`], {encoding: 'utf8'});
  if (r.status !== 0 && r.status !== 3) throw new Error(`the probe failed (${r.status}): ${r.stderr}`);
  return r.status === 0;
}

test('a second handle in this process, opening or waiting for the index, leaves the holder its lock', async t => {
  // LevelDB refuses a second open of an index in the process that holds it, but closes the
  // file it opened to ask, and closing any descriptor of its LOCK file drops the process's
  // fcntl lock: a second process could then open the index beside the first (two writers).
  const {index: holder, location} = await openTempIndex(t);
  let done!: () => void;
  const busy = holder.exclusive(() => new Promise<void>(r => { done = r; })); // cannot let go meanwhile
  t.teardown(() => { done(); return busy; });
  t.false(anotherProcessCanOpen(location), 'the holder has the lock');
  const second = await open(location, 60_000);
  t.teardown(() => second.close());
  t.false(second.holdsLock, 'a second handle reads a snapshot');
  t.false(anotherProcessCanOpen(location), 'the holder still has the lock after the second handle opened');
  const write = second.commit([{type: 'put', key: 'tag:second:1', value: Buffer.from('2')}]); // waits for the holder
  await new Promise(r => setTimeout(r, 300)); // it asks for the index every few ms meanwhile
  t.false(anotherProcessCanOpen(location), 'the holder still has the lock while the second handle waits for it');
  done();
  await busy;
  await write;
  t.true(second.holdsLock, 'the waiting handle got the index once the holder let go');
  t.false(anotherProcessCanOpen(location), 'and holds its lock');
});

test('a snapshot taken while another handle writes and compacts holds every commit that had returned', async t => {
  const {index: writer, location} = await openTempIndex(t);
  let committed = 0;
  let writing = true;
  const big = Buffer.alloc(2000, 1);
  // Commits, with content batches of ~10 MB between them, so LevelDB switches logs and compacts meanwhile.
  const writes = (async () => {
    for (let i = 0; writing; i++) {
      for (let j = 0; j < 5000; j++) writer.queue(`b:${i}:${j}`, big);
      await writer.commit([{type: 'put', key: `tag:n:${String(i).padStart(6, '0')}`, value: Buffer.from(String(i))}]);
      committed = i + 1;
    }
  })();
  // Eight snapshots at least, and more until the writer has committed three times while they
  // were taken (a loaded machine writes 10 MB slowly).
  for (let round = 0; round < 8 || (committed < 3 && round < 400); round++) {
    await new Promise(r => setTimeout(r, 150));
    const before = committed;
    const reader = await open(location); // the writer holds the index: a snapshot
    t.false(reader.holdsLock);
    const tags = (await reader.scan('tag:n:')).length;
    await reader.close();
    t.true(tags >= before, `round ${round}: the snapshot has ${tags} commits of the ${before} that had returned`);
  }
  writing = false;
  await writes;
  t.true(committed >= 3, `the writer committed ${committed} times meanwhile`);
});

test('liveTables reads from a manifest exactly the tables LevelDB keeps', async t => {
  const {liveTables} = await import('../src/objects/readOnlyIndex.js');
  const {index, location} = await openTempIndex(t);
  const value = Buffer.alloc(3000, 2);
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 5000; i++) index.queue(`b:${round}:${i}`, value);
    await index.flush();
  }
  await index.compact();
  await index.close(); // LevelDB deletes obsolete files on the way
  const current = (await fs.readFile(path.join(location, 'CURRENT'), 'utf8')).trim();
  const onDisk = (await fs.readdir(location)).filter(n => n.endsWith('.ldb')).map(n => Number(n.slice(0, -4))).sort((a, b) => a - b);
  t.true(onDisk.length > 0);
  t.deepEqual([...liveTables(await fs.readFile(path.join(location, current)))].sort((a, b) => a - b), onDisk);
});
