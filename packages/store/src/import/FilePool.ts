import {availableParallelism} from 'node:os';
import * as fs from 'node:fs';
import {Worker} from 'node:worker_threads';
import type {HashOutcome, HashReply, ListReply, ListRequest, PoolSettings, ReadyReply} from './hashWorker.js';
import {type Listing, failedListing} from './describeDirectory.js';
import {packRequest} from './hashRequest.js';
import {type BlobDirs, type FileBlob, type FileStamp, ReadBuffer, placeStagedSynced, storeFileSync} from '../objects/storeFileSync.js';
import {BackgroundSync} from './BackgroundSync.js';
import {tierUpLater} from './lateTierUp.js';
import {preferNativeHash} from '../objects/digest.js';

/** Files sent to a thread per message: amortises the message cost over small files. */
const BATCH_FILES = 64;
const BATCH_BYTES = 8 * 1024 * 1024;
/** Below this much work, starting threads (~30 ms) costs more than it saves. */
const THREADS_MIN_FILES = 256;
const THREADS_MIN_BYTES = 32 * 1024 * 1024;
/** Requests posted to a thread at once: it starts the next while the main thread handles a reply. */
const PER_THREAD = 2;
/** Batches waiting or in flight per thread before `room` makes the caller wait. */
const AHEAD_PER_THREAD = 4;
/** What `storeSomeHere` takes per turn, at most: a few milliseconds of work. */
const HERE_TURN_FILES = 16;
const HERE_TURN_BYTES = 4 * 1024 * 1024;
/**
 * New object files staged in tmp/ unsynced are made durable together by a `sync -f` in a
 * child process, begun once this many bytes wait (or PLACE_FILES files), while the walk
 * and the threads go on: the disk writes overlap the reading and hashing, and the files
 * are placed and indexed during the walk, not all at its end (a rootfs import waited
 * ~0.2-0.5 s for one sync at the end, and then for its trees).
 */
const SYNC_BYTES = 32 * 1024 * 1024;
/**
 * At most this many staged files or bytes wait (while a sync runs) before the walk waits
 * too, so their records do not pile up.
 */
const PLACE_FILES = 8192;
const PLACE_BYTES = 1024 * 1024 * 1024;

export interface FileJob {
  readonly path: string;
  readonly size: number;
  /** What the walk saw; a file that no longer matches it after the read is SOURCE_CHANGED. */
  readonly stamp?: FileStamp;
}

type Stored<J> = (job: J, blob: FileBlob) => void;
type ToError<J> = (job: J, err: {code?: string; message: string}) => Error;

/** A hashing thread and the replies it owes, oldest first (a thread answers in order); undefined: it died. */
interface Thread {
  readonly worker: Worker;
  readonly replies: ((reply: HashReply | ListReply | undefined) => void)[];
  /** It has started (`ReadyReply`): a thread takes ~0.1-0.4 s to load its code here. */
  started: boolean;
}

interface Pending<J> {
  readonly job: J;
  readonly blob: FileBlob & {staged: string};
}

/**
 * Stores host files as blobs on every core, as they are added: each thread reads, hashes
 * and writes object files with synchronous calls, which here cost a fraction of Node's
 * async fs calls (docs/benchmarks.md, "import"). Nothing is kept per file once it is
 * stored: `onStored` gets each blob (an inline one with its bytes) when it is safe to index,
 * i.e. a new object file only once it is durable and in place. New object files are staged
 * in tmp/ unsynced and made durable together, a few thousand at a time (`placeStaged`).
 * The first jobs wait until there are enough to be worth threads; a pool that never gets
 * that many stores them in the calling thread at `finish`. `room()` tells the caller to
 * wait while the threads have enough queued, so a walk never runs far ahead of the disk.
 * The first failure (`toError` names the file) stops the pool; `finish` throws it, and
 * staged files are removed. Once the threads run they also list directories (`list`:
 * describeDirectory.ts), reading and hashing the listed files themselves; the caller hands
 * those blobs back through `adopt` (staged ones are placed like the pool's own).
 */
export class FilePool<J extends FileJob> {
  private readonly settings: PoolSettings;
  private readonly staging: BlobDirs;
  private readonly toError: ToError<J>;
  private readonly onStored: Stored<J>;
  private workers: Thread[] | undefined;
  /** Jobs added and not yet stored (or failed). */
  private inFlight = 0;
  private inFlightBytes = 0;
  private batch: J[] = [];
  private batchBytes = 0;
  private readonly ready: J[][] = [];
  private staged: Pending<J>[] = [];
  private stagedBytes = 0;
  /** The sync under way and the files it makes durable (placed when it ends). */
  private syncing: {readonly files: Pending<J>[]; readonly bytes: number; readonly done: Promise<void>} | undefined;
  private failed: Error | undefined;
  private wakeRoom: (() => void) | undefined;
  private wakeIdle: (() => void) | undefined;
  /** Calls of `room` since it last let the threads' replies in. */
  private sinceReplies = 0;
  /** Where `storeSomeHere` reads large files (kept for the pool's life). */
  private readonly reads: ReadBuffer;
  private readonly syncer: BackgroundSync;
  /** Listings a thread sent whose staged files nobody has taken yet (`adopt`): removed on failure. */
  private readonly unclaimed = new Set<Listing>();
  /** Set while V8 tiers up later (lateTierUp.ts), from when the threads start. */
  private releaseTierUp: (() => void) | undefined;

  constructor(settings: PoolSettings, toError: ToError<J>, onStored: Stored<J>) {
    this.staging = {...settings.dirs, stage: true};
    this.settings = {...settings, dirs: this.staging};
    this.reads = new ReadBuffer(settings.dirs.inlineMax);
    this.syncer = new BackgroundSync(settings.dirs.dir);
    this.toError = toError;
    this.onStored = onStored;
  }

  /** The first failure, if any: the caller stops adding work. */
  get error(): Error | undefined {
    return this.failed;
  }

  add(job: J): void {
    if (this.failed) return;
    this.inFlight++;
    this.inFlightBytes += job.size;
    this.batch.push(job);
    this.batchBytes += job.size;
    if (this.batch.length >= BATCH_FILES || this.batchBytes >= BATCH_BYTES) this.cut();
    if (!this.workers && (this.inFlight >= THREADS_MIN_FILES || this.inFlightBytes >= THREADS_MIN_BYTES)) this.startThreads();
    this.dispatch();
  }

  /** Threads running (0 before they start). */
  get threads(): number {
    return this.workers?.length ?? 0;
  }

  /**
   * Whether the threads run: `list` may be called, and listings hash files. Not until one
   * has started (~0.1-0.4 s here): meanwhile the caller lists directories itself, hashing
   * their files (`threads` > 0), and stores the files of the batches queued for the threads
   * (`storeSomeHere`).
   */
  get threaded(): boolean {
    return this.workers !== undefined && this.failed === undefined && this.workers.some(w => w.started);
  }

  /**
   * Lists and describes a directory on the thread with the least work queued, hashing its
   * first files there (describeDirectory.ts). Only while `threaded`. Never rejects: a
   * failure comes back as the listing's `error`, a thread that died as one too.
   */
  list(dir: string, layerPath: string): Promise<Listing> {
    const workers = this.workers;
    if (!workers) throw new TypeError('assertion failed: FilePool.list without threads');
    let w = workers[0]!;
    for (const x of workers) if (x.replies.length < w.replies.length) w = x;
    return new Promise<Listing>(resolve => {
      w.replies.push(reply => {
        const listing = reply && 'listing' in reply ? reply.listing : lostListing;
        if (this.failed) this.discard(listing.staged);
        else if (listing.staged.length > 0) this.unclaimed.add(listing);
        this.dispatch();
        this.wake();
        resolve(listing);
      });
      w.worker.postMessage({list: {dir, layerPath}} satisfies ListRequest);
    });
  }

  /**
   * A blob a listing stored (its thread read and hashed it), for `onStored` as if a job of
   * the pool: at once, or, for a staged object file, once it is durable and in place.
   * `claim` the listing first.
   */
  adopt(job: J, blob: FileBlob): void {
    if (this.failed) {
      if (blob.staged !== undefined) fs.rmSync(blob.staged, {force: true});
      return;
    }
    this.stored(job, blob);
  }

  /**
   * V8 tiers up as usual again (lateTierUp.ts): for the caller to call after LATE_TIER_UP_FILES
   * files, or when its import is done (its layer's pack is cold code too, so not at `finish`).
   */
  tierUpAsUsual(): void {
    this.releaseTierUp?.();
    this.releaseTierUp = undefined;
  }

  /** Where a listing made in the calling thread stages the files it hashes, as the threads' do. */
  get stagingDirs(): BlobDirs {
    return this.staging;
  }

  /** A listing made in the calling thread that staged files: removed on failure until `claim`ed, as a thread's. */
  track(listing: Listing): void {
    if (this.failed) this.discard(listing.staged);
    else this.unclaimed.add(listing);
  }

  /** The caller has taken a listing's staged files (each went to `adopt`); until then a failure removes them. */
  claim(listing: Listing): void {
    this.unclaimed.delete(listing);
    if (this.failed) this.discard(listing.staged);
  }

  private discard(staged: readonly string[]): void {
    for (const s of staged) fs.rmSync(s, {force: true});
  }

  /**
   * Undefined when the pool has room for more (mostly), else a promise that resolves when
   * it has; throws, or rejects, after a failure. Not an async function: a promise per file
   * costs the walk more than the rest of a file's work on this thread (async hooks are on:
   * the index's undo journal is an AsyncLocalStorage).
   */
  room(): Promise<void> | undefined {
    if (this.failed) throw this.failed;
    // Every batch's worth of files, let the threads' replies in: a caller that never has to
    // wait would otherwise read no reply, and so hand out no new work, until the queue is
    // full, while the threads that have answered sit idle.
    const letIn = this.workers !== undefined && ++this.sinceReplies >= BATCH_FILES;
    if (!letIn && !this.full()) return undefined;
    return this.waitForRoom(letIn);
  }

  private full(): boolean {
    const threads = this.workers?.length ?? 1;
    if (this.failed) return false;
    if (this.staged.length + (this.syncing?.files.length ?? 0) >= PLACE_FILES || this.stagedBytes + (this.syncing?.bytes ?? 0) >= PLACE_BYTES) return true; // until the sync under way ends
    return this.workers !== undefined && (this.inFlight >= threads * AHEAD_PER_THREAD * BATCH_FILES || this.inFlightBytes >= threads * AHEAD_PER_THREAD * BATCH_BYTES);
  }

  private async waitForRoom(letIn: boolean): Promise<void> {
    if (letIn) {
      this.sinceReplies = 0;
      await new Promise<void>(resolve => setImmediate(resolve));
    }
    while (this.full()) {
      this.dispatch();
      await new Promise<void>(resolve => { this.wakeRoom = resolve; });
    }
    if (this.failed) throw this.failed;
  }

  /**
   * For a caller that would otherwise wait: when every thread has all the requests it may
   * hold (or has not started), stores in the calling thread a few of the jobs queued that
   * no thread has been sent, the newest first (the threads take the oldest); otherwise
   * sends the threads what is queued. True when it stored any. On 2 cores there is one
   * hashing thread and the caller's, and the caller mostly waited for it (docs/benchmarks.md,
   * "The rootfs import on 2 cores"). A failure stops the pool, as a thread's would.
   */
  storeSomeHere(): boolean {
    if (!this.workers || this.failed) return false;
    this.dispatch();
    if (this.workers.some(w => w.started && w.replies.length < PER_THREAD)) {
      // A thread has room: it takes the work (in batches, which amortise the messages).
      if (this.batch.length > 0) {
        this.cut();
        this.dispatch();
      }
      return false;
    }
    let files = 0, bytes = 0;
    while (files < HERE_TURN_FILES && bytes < HERE_TURN_BYTES && !this.failed) {
      const job = this.takeNewest();
      if (!job) break;
      files++;
      bytes += job.size;
      try {
        this.storeHere([job], this.reads);
      } catch (err) {
        this.fail(err as Error);
      }
    }
    if (files > 0) {
      this.dispatch();
      this.wake(); // a caller waiting for room may have it now
    }
    return files > 0;
  }

  /** The newest job no thread has: from the batch being filled, else the last ready batch. */
  private takeNewest(): J | undefined {
    const job = this.batch.pop();
    if (job) {
      this.batchBytes -= job.size;
      return job;
    }
    const last = this.ready[this.ready.length - 1];
    if (!last) return undefined;
    if (last.length === 1) this.ready.pop();
    return last.pop();
  }

  /** Stores what is left, places every staged file and ends the threads; throws the first failure. */
  async finish(): Promise<void> {
    try {
      this.cut();
      if (!this.workers) {
        // Too little to be worth threads: in this thread, in order.
        for (const jobs of this.ready.splice(0)) this.storeHere(jobs);
      } else {
        this.dispatch();
        while (!this.failed && this.inFlight > 0) {
          if (this.storeSomeHere()) await new Promise<void>(resolve => setImmediate(resolve));
          else await new Promise<void>(resolve => { this.wakeIdle = resolve; });
        }
      }
      if (this.failed) throw this.failed;
      await this.syncEnded();
      if (this.staged.length > 0) this.startSync();
      await this.syncEnded();
      if (this.failed) throw this.failed;
    } catch (err) {
      this.fail(err as Error);
      throw this.failed;
    } finally {
      await this.stop();
    }
  }

  /** Stops after a failure elsewhere: ends the threads, removes staged files. */
  async abort(): Promise<void> {
    this.fail(new Error('aborted'));
    await this.stop();
  }

  private cut(): void {
    if (this.batch.length === 0) return;
    this.ready.push(this.batch);
    this.batch = [];
    this.batchBytes = 0;
  }

  private startThreads(): void {
    // One core is the importing thread's (indexing, trees): one thread fewer than cores. On
    // 2 cores, a second hashing thread made an import of small files cost ~15-20 % more CPU
    // (each thread compiles the same hot code, and three threads share two cores).
    const threads = Math.max(1, Math.min(availableParallelism() - 1, 8));
    this.syncer.start(); // now, while this process is smaller (BackgroundSync.ts)
    this.releaseTierUp = tierUpLater(); // before the threads' isolates run anything (lateTierUp.ts)
    preferNativeHash(); // thousands of hashes follow: skip the TypeScript hash's cold start (digest.ts)
    this.workers = Array.from({length: threads}, () => {
      const w: Thread = {worker: new Worker(new URL('./hashWorker.js', import.meta.url), {workerData: this.settings}), replies: [], started: false};
      w.worker.on('message', (reply: HashReply | ListReply | ReadyReply) => {
        if ('started' in reply) w.started = true;
        else w.replies.shift()?.(reply);
      });
      const lost = (err: Error) => {
        this.fail(err);
        for (const answer of w.replies.splice(0)) answer(undefined); // a dead thread answers nothing more
      };
      w.worker.on('error', lost);
      w.worker.on('exit', () => lost(new Error('a hashing thread ended early')));
      return w;
    });
  }

  /** Posts ready batches to threads with fewer than PER_THREAD requests outstanding. */
  private dispatch(): void {
    if (!this.workers || this.failed) return;
    for (const w of this.workers) {
      while (w.replies.length < PER_THREAD && this.ready.length > 0) {
        const jobs = this.ready.shift()!;
        w.replies.push(reply => { if (reply && 'outcomes' in reply) this.settle(jobs, reply.outcomes); });
        w.worker.postMessage(packRequest(jobs));
      }
    }
  }

  private settle(jobs: readonly J[], outcomes: readonly HashOutcome[]): void {
    jobs.forEach((job, k) => {
      const o = outcomes[k]!;
      this.inFlight--;
      this.inFlightBytes -= job.size;
      if (this.failed) {
        if (!('error' in o) && o.staged) fs.rmSync(o.staged, {force: true}); // not to be placed now
        return;
      }
      if ('error' in o) this.fail(this.toError(job, o.error));
      else this.stored(job, o);
    });
    this.dispatch();
    this.wake();
  }

  /** With `reads`, large files are read into its buffer. */
  private storeHere(jobs: readonly J[], reads?: ReadBuffer): void {
    for (const job of jobs) {
      let blob: FileBlob;
      try {
        blob = reads ? reads.store(job.path, job.size, this.staging, job.stamp) : storeFileSync(job.path, job.size, this.staging, job.stamp);
      } catch (err) {
        throw this.toError(job, err as NodeJS.ErrnoException);
      }
      this.inFlight--;
      this.inFlightBytes -= job.size;
      this.stored(job, blob);
    }
  }

  private stored(job: J, blob: FileBlob): void {
    if (blob.staged !== undefined) {
      this.staged.push({job, blob: blob as FileBlob & {staged: string}});
      this.stagedBytes += blob.size;
      if (!this.syncing && (this.stagedBytes >= SYNC_BYTES || this.staged.length >= PLACE_FILES)) this.startSync();
    } else {
      this.handOver(job, blob);
    }
  }

  /** The caller's part; what it throws stops the pool like a failed file. */
  private handOver(job: J, blob: FileBlob): void {
    try {
      this.onStored(job, blob);
    } catch (err) {
      this.fail(err as Error);
    }
  }

  /**
   * Makes the staged object files durable (a `sync -f` begun after their bytes were
   * written, in a child process, BackgroundSync.ts: this thread goes on), then puts them in place; only then
   * are they the caller's to index. One sync at a time; the files staged meanwhile wait for
   * the next, begun when this one ends if there are enough (`finish` syncs the rest).
   */
  private startSync(): void {
    const files = this.staged, bytes = this.stagedBytes;
    this.staged = [];
    this.stagedBytes = 0;
    const done = this.syncer.sync().then(synced => {
      if (this.failed) throw this.failed;
      placeStagedSynced(this.staging.dir, files.map(s => s.blob), synced);
      for (const s of files) if (!this.failed) this.handOver(s.job, {digest: s.blob.digest, size: s.blob.size});
    }).catch(err => {
      for (const s of files) fs.rmSync(s.blob.staged, {force: true}); // not in place: nothing names them
      this.fail(err as Error);
    }).finally(() => {
      this.syncing = undefined;
      if (!this.failed && (this.stagedBytes >= SYNC_BYTES || this.staged.length >= PLACE_FILES)) this.startSync();
      this.wake();
    });
    this.syncing = {files, bytes, done};
  }

  private async syncEnded(): Promise<void> {
    while (this.syncing) await this.syncing.done;
  }

  private fail(err: Error): void {
    this.failed ??= err;
    this.wake();
  }

  private wake(): void {
    const room = this.wakeRoom, idle = this.wakeIdle;
    this.wakeRoom = this.wakeIdle = undefined;
    room?.();
    idle?.();
  }

  /** Ends the threads once they have answered what they were sent (their staged files are then known, and removed on failure). */
  private async stop(): Promise<void> {
    const workers = this.workers ?? [];
    this.workers = undefined;
    while (workers.some(w => w.replies.length > 0)) await new Promise<void>(resolve => { this.wakeIdle = resolve; });
    await this.syncEnded(); // its files are placed, or removed after a failure
    this.syncer.close();
    await Promise.all(workers.map(w => { w.worker.removeAllListeners('exit'); return w.worker.terminate(); }));
    if (this.failed) {
      for (const s of this.staged) fs.rmSync(s.blob.staged, {force: true});
      this.staged = [];
      for (const listing of this.unclaimed) this.discard(listing.staged);
      this.unclaimed.clear();
    }
  }
}

/** What `list` resolves with when the thread died before it answered (the pool has failed already). */
const lostListing = failedListing({store: false, message: 'a hashing thread ended early'});
