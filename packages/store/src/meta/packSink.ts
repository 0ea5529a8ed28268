import * as fs from 'node:fs';
import {Worker} from 'node:worker_threads';
import type {Digest} from '../objects/digest.js';
import {StoreError} from '../errors.js';
import {checkBlobBytes} from '../objects/verifiedRead.js';
import {writePack} from './packs.js';

/**
 * Blob bytes on their way into a fresh small-blob pack, copied as they are read into
 * batches (one ArrayBuffer each) that can be handed to another thread whole.
 */
export interface PackBatch {
  readonly bytes: ArrayBuffer;
  /** Per blob: its digest, its size (from the tree), where its bytes are in `bytes`. */
  readonly digests: Digest[];
  readonly sizes: number[];
  readonly offsets: number[];
}

/** What a pack thread is sent: batches as they fill, then where to write. */
export type PackRequest = {readonly batch: PackBatch} | {readonly finish: {readonly tmpPack: string; readonly tmpList: string}};
/** What it answers once: the pack's digest, or why it failed. */
export type PackReply = {readonly pack: Digest} | {readonly failure: {readonly code?: string; readonly message: string; readonly store: boolean}};

const BATCH_BYTES = 4 << 20;
/**
 * From this many bytes of fresh pack on, the pack is checked and written by a thread of its
 * own while this one writes the metadata image: starting a thread costs ~20-40 ms of CPU,
 * what checking and writing ~30 MiB of small blobs costs (docs/benchmarks.md).
 */
export const PACK_THREAD_BYTES = 32 << 20;

/**
 * Collects the blobs of a fresh pack (their bytes as read from the index, not yet checked)
 * and writes the pack: past PACK_THREAD_BYTES on a thread that checks each blob against its
 * digest and writes and fsyncs the pack while the caller goes on (the batches go to it as
 * they fill, their buffers transferred, not copied), else here at `finish`. Either way a
 * blob whose bytes do not hash to its digest fails the build (OBJECT_CORRUPT) before
 * anything is renamed, and the pack's bytes are the same (packs.ts writePack).
 */
export class PackSink {
  private batches: PackBatch[] = [];
  private current: PackBatch | undefined;
  private used = 0;
  private total = 0;
  private bytesSoFar = 0;
  private worker: Worker | undefined;
  private reply: Promise<PackReply> | undefined;
  /** Whether the pack thread fsynced the files itself. */
  synced = false;

  constructor(private readonly threadBytes = PACK_THREAD_BYTES) {}

  get size(): number {
    return this.total + (this.current?.digests.length ?? 0);
  }

  add(d: Digest, size: number, data: Uint8Array): void {
    if (!this.current || this.used + data.length > this.current.bytes.byteLength) this.nextBatch(data.length);
    const b = this.current!;
    new Uint8Array(b.bytes, this.used, data.length).set(data);
    b.digests.push(d);
    b.sizes.push(size);
    b.offsets.push(this.used);
    this.used += data.length;
  }

  /** Writes the pack of every blob added to `tmpPack`, its list to `tmpList` (both synced when `synced`); returns its digest. */
  async finish(tmpPack: string, tmpList: string): Promise<Digest> {
    this.flushBatch();
    if (!this.worker) {
      const blobs = new Map<Digest, Uint8Array>();
      for (const b of this.batches) for (const [d, data] of checkedBlobs(b)) blobs.set(d, data);
      this.batches = [];
      return writePack(blobs, tmpPack, tmpList);
    }
    this.worker.postMessage({finish: {tmpPack, tmpList}} satisfies PackRequest);
    const r = await this.reply!;
    await this.stop();
    if ('failure' in r) {
      if (r.failure.store) throw new StoreError(r.failure.code as ConstructorParameters<typeof StoreError>[0], r.failure.message);
      throw Object.assign(new Error(r.failure.message), r.failure.code ? {code: r.failure.code} : {});
    }
    this.synced = true;
    return r.pack;
  }

  /** Ends the thread, if any (a build that fails part-way); the caller removes the tmp files. */
  async stop(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }

  private nextBatch(need: number): void {
    this.flushBatch();
    this.current = {bytes: new ArrayBuffer(Math.max(BATCH_BYTES, need)), digests: [], sizes: [], offsets: []};
    this.used = 0;
  }

  private flushBatch(): void {
    const b = this.current;
    if (!b || b.digests.length === 0) return;
    this.current = undefined;
    this.total += b.digests.length;
    // A batch is cut to what it holds: the rest of its buffer is not sent.
    const full: PackBatch = this.used === b.bytes.byteLength ? b : {...b, bytes: b.bytes.slice(0, this.used)};
    this.batches.push(full);
    this.bytesSoFar += this.used;
    if (!this.worker && this.bytesSoFar >= this.threadBytes) this.startThread();
    if (this.worker) {
      for (const batch of this.batches) this.worker.postMessage({batch} satisfies PackRequest, [batch.bytes]);
      this.batches = [];
    }
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
  }
}

/** The blobs of a batch, each checked against its digest (OBJECT_CORRUPT): damaged bytes are never packed. */
export function* checkedBlobs(b: PackBatch): Generator<[Digest, Buffer]> {
  for (let i = 0; i < b.digests.length; i++) {
    const end = i + 1 < b.digests.length ? b.offsets[i + 1]! : b.bytes.byteLength;
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
