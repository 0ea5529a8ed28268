import {availableParallelism} from 'node:os';
import {Worker} from 'node:worker_threads';
import {StoreError} from '../errors.js';
import {type HostEntryJob, type HostWriteFailure, type HostWriteSettings, toFailure, writeHostEntry} from './writeHostEntry.js';
import type {WriteReply, WriteRequest} from './hostWriteWorker.js';

export type {HostEntryJob} from './writeHostEntry.js';

/** Entries per message: amortises the message cost over small files. */
const BATCH_FILES = 128;
const BATCH_BYTES = 8 * 1024 * 1024;
/** Below this much work, starting threads (~30 ms) costs more than it saves. */
const THREADS_MIN_FILES = 256;
const THREADS_MIN_BYTES = 32 * 1024 * 1024;
/** Batches queued per thread before `write` waits: bounds the memory of a walk that runs ahead. */
const QUEUED_PER_THREAD = 2;

/**
 * Writes files and symlinks on the host on every core, as import's hashing threads read
 * them (`FilePool.ts`): the caller walks and sends entries in any order (their directories
 * must exist), each thread writes its batches with synchronous calls. `write` waits when
 * the threads are behind, so memory holds a few batches however large the tree is. Small
 * jobs (under THREADS_MIN_*) are written in the calling thread at `finish`. The first
 * failure stops the run: `write` and `finish` throw it (OBJECT_CORRUPT, OBJECT_MISSING as
 * StoreErrors, fs errors with their code, syscall and paths). Entries already written stay:
 * the caller writes into a directory of its own and removes it on failure.
 */
export class HostWriter {
  private readonly settings: HostWriteSettings;
  private batch: HostEntryJob[] = [];
  private batchBytes = 0;
  /** Jobs held before the threads start (or, for a small run, until `finish`). */
  private held: HostEntryJob[] | undefined = [];
  private heldBytes = 0;
  private workers: Worker[] = [];
  private idle: Worker[] = [];
  private queue: HostEntryJob[][] = [];
  private running = 0;
  private failed: Error | undefined;
  private waiters: (() => void)[] = [];

  constructor(storeDir: string, options: {owners: boolean}, private readonly onWritten?: (files: number, bytes: number) => void) {
    this.settings = {storeDir, owners: options.owners};
  }

  /** Queues one entry; waits while the threads are more than a few batches behind. */
  async write(job: HostEntryJob): Promise<void> {
    if (this.failed) throw this.failed;
    if (this.held) {
      this.held.push(job);
      this.heldBytes += job.size;
      if (this.held.length < THREADS_MIN_FILES && this.heldBytes < THREADS_MIN_BYTES) return;
      const held = this.held;
      this.held = undefined;
      this.start();
      for (const j of held) this.add(j);
    } else {
      this.add(job);
    }
    while (!this.failed && this.queue.length > this.workers.length * QUEUED_PER_THREAD) await new Promise<void>(r => this.waiters.push(r));
    if (this.failed) throw this.failed;
  }

  /** Writes what is left and waits for every thread; throws the first failure. */
  async finish(): Promise<void> {
    try {
      if (this.held) {
        const held = this.held;
        this.held = undefined;
        let files = 0, bytes = 0;
        for (const job of held) {
          try {
            writeHostEntry(job, this.settings);
          } catch (err) {
            throw fromFailure(toFailure(err, this.settings, job));
          }
          if (job.kind === 'file') { files++; bytes += job.size; }
        }
        if (files > 0) this.onWritten?.(files, bytes);
        return;
      }
      this.flushBatch();
      while (!this.failed && (this.running > 0 || this.queue.length > 0)) await new Promise<void>(r => this.waiters.push(r));
      if (this.failed) throw this.failed;
    } finally {
      await this.stop();
    }
  }

  /** Stops the threads (after a failure elsewhere); what they wrote stays. */
  async stop(): Promise<void> {
    const workers = this.workers;
    this.workers = [];
    this.idle = [];
    this.queue = [];
    await Promise.all(workers.map(w => w.terminate()));
  }

  private add(job: HostEntryJob): void {
    this.batch.push(job);
    this.batchBytes += job.size;
    if (this.batch.length >= BATCH_FILES || this.batchBytes >= BATCH_BYTES) this.flushBatch();
  }

  private flushBatch(): void {
    if (this.batch.length === 0) return;
    // Inline bytes go to the thread in buffers of their own, moved rather than copied: a
    // view into a larger buffer (LevelDB's, Node's pool) would be cloned whole.
    this.queue.push(this.batch.map(j => (j.inline ? {...j, inline: new Uint8Array(j.inline)} : j)));
    this.batch = [];
    this.batchBytes = 0;
    this.pump();
  }

  private start(): void {
    const threads = Math.max(1, Math.min(availableParallelism(), 8));
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(new URL('./hostWriteWorker.js', import.meta.url), {workerData: this.settings});
      worker.on('message', (reply: WriteReply) => this.done(worker, reply));
      worker.on('error', err => this.fail(err));
      this.workers.push(worker);
      this.idle.push(worker);
    }
  }

  private pump(): void {
    while (!this.failed && this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const jobs = this.queue.shift()!;
      this.running++;
      const transfer = jobs.flatMap(j => (j.inline ? [j.inline.buffer as ArrayBuffer] : []));
      worker.postMessage({jobs} satisfies WriteRequest, transfer);
    }
    this.wake();
  }

  private done(worker: Worker, reply: WriteReply): void {
    this.running--;
    if (reply.failure) this.fail(fromFailure(reply.failure));
    if (reply.files > 0) this.onWritten?.(reply.files, reply.bytes);
    this.idle.push(worker);
    this.pump();
  }

  private fail(err: Error): void {
    this.failed ??= err;
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** The error a failure stood for: damage as a StoreError, anything else as Node's fs error (code, syscall, paths). */
export function fromFailure(f: HostWriteFailure): Error {
  if (f.storeCode) return new StoreError(f.storeCode, f.message);
  return Object.assign(new Error(f.message), {
    ...(f.code ? {code: f.code} : {}), ...(f.syscall ? {syscall: f.syscall} : {}),
    ...(f.path ? {path: f.path} : {}), ...(f.dest ? {dest: f.dest} : {}),
  });
}
