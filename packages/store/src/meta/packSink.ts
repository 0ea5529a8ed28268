import * as fs from 'node:fs';
import {availableParallelism} from 'node:os';
import {Worker} from 'node:worker_threads';
import type {Digest} from '../objects/digest.js';
import {StoreError} from '../errors.js';
import {checkBlobBytes} from '../objects/verifiedRead.js';
import {syncAll, writePack} from './packs.js';

/**
 * Blob bytes on their way to a pack thread, copied as they are read into batches (one
 * ArrayBuffer each, transferred to the thread whole).
 */
export interface PackBatch {
  readonly bytes: ArrayBuffer;
  /** Per blob: its digest, its size (from the index), where its bytes start in `bytes`; `end` ends the last. */
  readonly digests: Digest[];
  readonly sizes: number[];
  readonly offsets: number[];
  end: number;
}

/** What a pack thread is sent: batches as they fill, then where to write. */
export type PackRequest = {readonly batch: PackBatch} | {readonly finish: {readonly tmpPack: string; readonly tmpList: string}};
/** What it answers once: the pack's digest, or why it failed. */
export type PackReply = {readonly pack: Digest} | {readonly failure: {readonly code?: string; readonly message: string; readonly store: boolean}};

const BATCH_BYTES = 4 << 20;
/**
 * From this many bytes of fresh pack on, on a machine with more than two cores, the pack is
 * checked and written by a thread of its own while this one writes the metadata image:
 * starting a thread costs ~20-40 ms of CPU, about what checking and writing 30 MiB of small
 * blobs costs. With two cores or fewer the build's own thread, LevelDB's and the
 * collector's leave no core to spare: there the thread cost ~10% more CPU at 100,000 files
 * and gained no time measurably (docs/benchmarks.md, "Round 3").
 */
export const PACK_THREAD_BYTES = 32 << 20;
const PACK_THREAD_MIN_CORES = 3;

/**
 * Collects the blobs of a fresh pack (their bytes as read from the index, not yet checked)
 * and writes the pack: here at `finish`, or, past `threadBytes`, on a thread that checks each
 * blob against its digest and writes and fsyncs the pack while the caller goes on (the
 * blobs go to it in batches as they are read, their buffers transferred). Either way a blob
 * whose bytes do not hash to its digest fails the build (OBJECT_CORRUPT) before anything is
 * renamed, and the pack's bytes are the same (packs.ts writePack).
 */
export class PackSink {
  /** Blobs kept here (no thread yet): the buffers as read, not copied. */
  private here: {d: Digest; size: number; data: Uint8Array}[] = [];
  private current: PackBatch | undefined;
  private count = 0;
  private bytes = 0;
  private worker: Worker | undefined;
  private reply: Promise<PackReply> | undefined;
  /** Resolves once the pack and its list are durable (fsynced by the thread, or here, started when they are written). */
  private syncing: Promise<void> = Promise.resolve();
  private readonly threadBytes: number;

  /** `threadBytes`: from how many bytes of blobs a thread writes the pack (default PACK_THREAD_BYTES where the machine has cores to spare, else never). */
  constructor(threadBytes?: number) {
    this.threadBytes = threadBytes ?? (availableParallelism() >= PACK_THREAD_MIN_CORES ? PACK_THREAD_BYTES : Infinity);
  }

  /** Blobs added so far. */
  get size(): number {
    return this.count;
  }

  add(d: Digest, size: number, data: Uint8Array): void {
    this.count++;
    this.bytes += data.length;
    if (this.worker) return this.copy(d, size, data);
    this.here.push({d, size, data});
    if (this.bytes >= this.threadBytes) this.startThread();
  }

  /** Writes the pack of every blob added to `tmpPack`, its list to `tmpList` (durable once `durable()` resolves); returns its digest. */
  async finish(tmpPack: string, tmpList: string): Promise<Digest> {
    if (!this.worker) {
      const blobs = new Map<Digest, Buffer>();
      for (const {d, size, data} of this.here) blobs.set(d, checkBlobBytes(d, size, asBuffer(data)));
      this.here = [];
      const pack = writePack(blobs, tmpPack, tmpList);
      // Synced on libuv's threads while the build writes the image: the disk flushes the
      // pack meanwhile, rather than after the image.
      this.syncing = syncAll([tmpList, tmpPack]);
      this.syncing.catch(() => {}); // awaited by durable()
      return pack;
    }
    this.send();
    this.worker.postMessage({finish: {tmpPack, tmpList}} satisfies PackRequest);
    const r = await this.reply!;
    await this.stop();
    if ('failure' in r) {
      if (r.failure.store) throw new StoreError(r.failure.code as ConstructorParameters<typeof StoreError>[0], r.failure.message);
      throw Object.assign(new Error(r.failure.message), r.failure.code ? {code: r.failure.code} : {});
    }
    return r.pack;
  }

  /** Resolves once the files `finish` wrote are durable. */
  durable(): Promise<void> {
    return this.syncing;
  }

  /** Ends the thread, if any (a build that fails part-way); the caller removes the tmp files. */
  async stop(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }

  private startThread(): void {
    const worker = new Worker(new URL('./packWorker.js', import.meta.url));
    worker.unref();
    this.reply = new Promise<PackReply>(resolve => {
      worker.once('message', (r: PackReply) => resolve(r));
      worker.once('error', err => resolve({failure: {message: `the pack thread failed: ${err.message}`, store: false}}));
      worker.once('exit', code => resolve({failure: {message: `the pack thread exited (${code})`, store: false}}));
    });
    this.worker = worker;
    for (const {d, size, data} of this.here) this.copy(d, size, data);
    this.here = [];
  }

  /** Copies a blob into the current batch (sent when full). The index's buffers are not the build's to give away. */
  private copy(d: Digest, size: number, data: Uint8Array): void {
    let b = this.current;
    if (!b || b.end + data.length > b.bytes.byteLength) {
      this.send();
      // allocUnsafeSlow: a buffer of its own (not the pool's), so it can be transferred; every byte used is written.
      b = this.current = {bytes: Buffer.allocUnsafeSlow(Math.max(BATCH_BYTES, data.length)).buffer as ArrayBuffer, digests: [], sizes: [], offsets: [], end: 0};
    }
    new Uint8Array(b.bytes, b.end, data.length).set(data);
    b.digests.push(d);
    b.sizes.push(size);
    b.offsets.push(b.end);
    b.end += data.length;
  }

  private send(): void {
    const b = this.current;
    if (!b || !this.worker) return;
    this.current = undefined;
    this.worker.postMessage({batch: b} satisfies PackRequest, [b.bytes]);
  }
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** The blobs of a batch, each checked against its digest (OBJECT_CORRUPT): damaged bytes are never packed. */
export function* checkedBlobs(b: PackBatch): Generator<[Digest, Buffer]> {
  for (let i = 0; i < b.digests.length; i++) {
    const end = i + 1 < b.digests.length ? b.offsets[i + 1]! : b.end;
    const data = Buffer.from(b.bytes, b.offsets[i]!, end - b.offsets[i]!);
    yield [b.digests[i]!, checkBlobBytes(b.digests[i]!, b.sizes[i]!, data)];
  }
}

/** fsyncs a file by name. */
export function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
