import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {type Lister, ListingQueue} from '../src/import/ListingQueue.js';
import {type Listing, describeDirectory, errorData, failedListing} from '../src/import/describeDirectory.js';
import {tempDir, writeTree} from './_helpers.js';

/** A listing as a thread or the importing thread makes it. */
const listHere = (d: string, layerPath: string) => describeDirectory(d, layerPath, {whiteoutNames: false});

/**
 * A lister that lists real directories as a hashing thread would (a failure as a failed
 * listing), answering only when told (`answer`), so the test decides what has arrived.
 */
class HeldLister implements Lister {
  readonly threaded = true;
  readonly threads = 1;
  readonly asked: string[] = [];
  private readonly held: (() => void)[] = [];
  list(dir: string, layerPath: string): Promise<Listing> {
    this.asked.push(layerPath);
    return new Promise(resolve => this.held.push(() => {
      try {
        resolve(listHere(dir, layerPath));
      } catch (err) {
        resolve(failedListing(errorData(err)));
      }
    }));
  }
  answer(): void {
    for (const a of this.held.splice(0)) a();
  }
}

const settle = () => new Promise<void>(resolve => setImmediate(resolve));
const notHere = () => { throw new Error('listed in the importing thread, though the threads run'); };
const tenDirectories = () => Object.fromEntries(Array.from({length: 10}, (_, i) => [`d${i}/f`, `${i}`]));

/** A queue `ahead` per thread over a new tree of `files`, its root taken and answered, the thread asked ahead. */
async function queueOver(t: ExecutionContext, files: Record<string, string>, ahead: number) {
  const dir = await tempDir(t);
  await writeTree(dir, files);
  const lister = new HeldLister();
  const queue = new ListingQueue(lister, ahead);
  const root = queue.take(dir, '/', notHere);
  t.false(queue.listAhead(listHere), 'nothing known before the root is listed');
  lister.answer();
  t.is((await root).error, undefined);
  await settle();
  return {dir, lister, queue};
}

test('the importing thread lists ahead the first directories no thread was asked for, within the bound, and the walk takes them', async t => {
  const {dir, lister, queue} = await queueOver(t, tenDirectories(), 2); // 2 ahead, at most 4 asked and not entered
  t.deepEqual(lister.asked, ['/', '/d0', '/d1']); // two ahead of the walk
  const listedHere: string[] = [];
  const spy = (d: string, layerPath: string) => { listedHere.push(layerPath); return listHere(d, layerPath); };
  t.true(queue.listAhead(spy));
  t.true(queue.listAhead(spy));
  t.false(queue.listAhead(spy), 'four wait asked and not entered: no more');
  t.deepEqual(listedHere, ['/d2', '/d3']); // the next in the walk's order after the thread's
  // The walk enters them in order; what was listed here is taken as it is, the rest asked.
  for (let i = 0; i < 10; i++) {
    const p = queue.take(path.join(dir, `d${i}`), `/d${i}`, () => { throw new Error('listed in this thread only while the threads start'); });
    lister.answer();
    const listing = await p;
    t.is(listing.names, 'f\0', `d${i}`);
    t.deepEqual(listing, listHere(path.join(dir, `d${i}`), `/d${i}`));
    while (queue.listAhead(spy)) { /* as the walk does while it would wait */ }
    lister.answer();
    await settle();
  }
  t.deepEqual([...lister.asked, ...listedHere].sort(), ['/', ...Array.from({length: 10}, (_, i) => `/d${i}`)].sort(), 'each directory listed once');
  t.true(listedHere.length >= 2);
});

test('a directory that fails to be listed ahead fails when the walk enters it, not before', async t => {
  const {dir, lister, queue} = await queueOver(t, {'a/f': 'a', 'b/f': 'b', 'c/f': 'c'}, 1);
  t.deepEqual(lister.asked, ['/', '/a']);
  await fs.rm(path.join(dir, 'b'), {recursive: true});
  t.true(queue.listAhead(listHere)); // b: gone
  const a = queue.take(path.join(dir, 'a'), '/a', notHere);
  lister.answer();
  t.is((await a).error, undefined);
  const b = await queue.take(path.join(dir, 'b'), '/b', notHere);
  t.is(b.error?.store, true);
  t.is(b.error?.code, 'SOURCE_MISSING');
});

test('the thread is asked for the directories next in the walk\'s order, at most twice `ahead` waiting, and the walk takes each listing once', async t => {
  const {dir, lister, queue} = await queueOver(t, tenDirectories(), 2); // 2 ahead of the walk, at most 4 asked and not entered
  t.deepEqual(lister.asked, ['/', '/d0', '/d1']); // two ahead of the walk
  for (let i = 0; i < 10; i++) {
    t.true(lister.asked.length - 1 - i <= 4, `at most four wait asked and not entered before d${i}`);
    const p = queue.take(path.join(dir, `d${i}`), `/d${i}`, notHere);
    lister.answer();
    const listing = await p;
    t.is(listing.names, 'f\0', `d${i}`);
    t.deepEqual(listing, listHere(path.join(dir, `d${i}`), `/d${i}`));
    lister.answer();
    await settle();
  }
  t.deepEqual(lister.asked, ['/', ...Array.from({length: 10}, (_, i) => `/d${i}`)], 'each directory asked once, in the walk\'s order');
});

test('a directory gone before the thread lists it fails when the walk enters it, not before', async t => {
  const {dir, lister, queue} = await queueOver(t, {'a/f': 'a', 'b/f': 'b', 'c/f': 'c'}, 1);
  t.deepEqual(lister.asked, ['/', '/a']);
  await fs.rm(path.join(dir, 'b'), {recursive: true});
  const a = queue.take(path.join(dir, 'a'), '/a', notHere);
  lister.answer();
  t.is((await a).error, undefined);
  await settle();
  t.deepEqual(lister.asked, ['/', '/a', '/b']);
  lister.answer(); // b's listing, failed, arrives before the walk enters b
  await settle();
  const b = await queue.take(path.join(dir, 'b'), '/b', notHere);
  t.is(b.error?.store, true);
  t.is(b.error?.code, 'SOURCE_MISSING');
});
