import {AsyncLocalStorage} from 'node:async_hooks';
import * as fs from 'node:fs/promises';
import {Level} from 'level';
import {StoreError, isLevelLocked, isNoSpace, rethrowNoSpace} from '../errors.js';
import {snapshotIndex} from '../objects/readOnlyIndex.js';
import {type LockWait, lockTimeoutFromEnv, recordHolder, waitForLock} from '../objects/storeLock.js';

/** Pending index writes are flushed past either bound (measured: 1k–10k ops per batch is fastest). */
const FLUSH_OPS = 5000;
const FLUSH_BYTES = 32 * 1024 * 1024;

/** Entries read per step of a scan: large enough to amortise the native call, small enough to bound memory. */
const SCAN_STEP = 1000;

/** Free space kept beyond the log, so the index can always be opened again (and gc run). */
const INDEX_ROOM = 1024 * 1024;
/** More than LevelDB's log holds: its write buffer (4 MiB) and one batch (FLUSH_BYTES). */
const LOG_MAX = 64 * 1024 * 1024;

type LevelDB = Level<string, Buffer>;

/** One write of a commit, as LevelDB's batch takes it. Keys come from keys.ts, values from values.ts. */
export type IndexOp = {type: 'put'; key: string; value: Buffer} | {type: 'del'; key: string};

/**
 * The store's LevelDB index and the only code that touches LevelDB: the lock, buffered
 * content writes, durable commits, reads and scans.
 *
 * Two kinds of write: content (blobs, trees) is `queue`d, buffered, and becomes visible
 * at `flush()` (content is idempotent, so a flush cut short only leaves garbage); refs go
 * through `commit`, which flushes content first and then writes its ops atomically with
 * fsync, so a ref never names content the index lacks. Reads see queued writes at once.
 */
export class Index {
  /** Content writes not yet in LevelDB, key -> value (content is only ever put). */
  private pending = new Map<string, Buffer>();
  private pendingBytes = 0;
  /** The batch being written by `flush`, still readable until LevelDB has it. */
  private writing: Map<string, Buffer> | undefined;
  /** Keys known to exist, so a repeated `has` needs no lookup. */
  private readonly known = new Set<string>();
  private flushChain: Promise<void> = Promise.resolve();
  private flushQueued = false;
  private flushError: Error | undefined;
  private readonly deleteListeners: ((key: string) => void)[] = [];

  /** Removes the private snapshot a read-only store was opened from (`openSnapshot`), at close. */
  private dispose: (() => Promise<void>) | undefined;

  /** Keys the running `undoOnFailure` operation added (each has its own, through AsyncLocalStorage). */
  private readonly journal = new AsyncLocalStorage<Set<string>>();
  private readonly journals = new Set<Set<string>>();

  private constructor(private readonly db: LevelDB, private readonly location: string) {}

  /**
   * Opens the index at `location`, waiting while another process holds its lock
   * (objects/storeLock.ts: backing off up to 100 ms, telling `onWait` whom it waits for).
   * LevelDB admits one process; strata commands are short, so waiting for a turn
   * serialises them without a daemon. Once open, this process is recorded as the holder of
   * the store in `holderDir`. Throws STORE_LOCKED past `lockTimeoutMs` (default:
   * STRATA_LOCK_TIMEOUT_MS, else 60 s; BAD_SETTING when that is not a number), NO_SPACE,
   * INDEX_CORRUPT.
   */
  static async open(location: string, options: {holderDir: string; lockTimeoutMs?: number; onWait?: (wait: LockWait) => void}): Promise<Index> {
    const timeoutMs = options.lockTimeoutMs ?? lockTimeoutFromEnv();
    const db = await waitForLock(options.holderDir, async () => {
      const db: LevelDB = new Level<string, Buffer>(location, {keyEncoding: 'utf8', valueEncoding: 'buffer'});
      try {
        await db.open();
        return db;
      } catch (err) {
        if (isNoSpace(err))
          throw new StoreError('NO_SPACE', `the disk is full: the index at ${location} needs a little free space to open; free some, then "strata gc" reclaims what a failed write left`, {cause: err});
        if (isLevelLocked(err)) throw err;
        const code = (err as {code?: string}).code;
        if (code === 'LEVEL_DATABASE_NOT_OPEN')
          throw new StoreError('INDEX_CORRUPT', `the index at ${location} cannot be opened (${(err as Error & {cause?: Error}).cause?.message ?? (err as Error).message}); "strata verify --repair" rebuilds it`, {cause: err});
        throw err;
      }
    }, isLevelLocked, {timeoutMs, ...(options.onWait ? {onWait: options.onWait} : {})});
    recordHolder(options.holderDir);
    return new Index(db, location);
  }

  /**
   * Opens a private snapshot of the read-only index at `location` (objects/readOnlyIndex.ts):
   * no lock, since no process can change a store nobody may write; writes go to the
   * snapshot and vanish at `close`. Throws INDEX_CORRUPT when LevelDB cannot read it.
   */
  static async openSnapshot(location: string, dir: string): Promise<Index> {
    const snapshot = await snapshotIndex(location);
    const db: LevelDB = new Level<string, Buffer>(snapshot.location, {keyEncoding: 'utf8', valueEncoding: 'buffer'});
    try {
      await db.open();
    } catch (err) {
      await snapshot.dispose();
      throw new StoreError('INDEX_CORRUPT', `the index of the read-only store at ${dir} cannot be read (${(err as Error & {cause?: Error}).cause?.message ?? (err as Error).message})`, {cause: err});
    }
    const index = new Index(db, snapshot.location);
    index.dispose = snapshot.dispose;
    return index;
  }

  /**
   * Rebuilds a damaged index with LevelDB's own repair (RepairDB): it reads every table and
   * log it can, writes a new manifest, and moves files it cannot read to `lost/` instead of
   * deleting them. The caller must have closed its handle. Throws STORE_LOCKED when another
   * process has the index open (repairing under a live writer would lose its writes).
   */
  static async repair(location: string): Promise<void> {
    const probe = new Level<string, Buffer>(location, {keyEncoding: 'utf8', valueEncoding: 'buffer'});
    try {
      await probe.open();
      await probe.close();
    } catch (err) {
      if (isLevelLocked(err)) throw new StoreError('STORE_LOCKED', 'the store is open in another strata process; repair it when that one has finished', {cause: err});
      // Unopenable: exactly what repair is for.
    }
    await (Level as unknown as {repair(location: string): Promise<void>}).repair(location);
  }

  get isOpen(): boolean {
    return this.db.status === 'open';
  }

  /** Flushes pending writes and lets go of the lock. */
  async close(): Promise<void> {
    if (!this.isOpen) return;
    await this.flush();
    await this.db.close();
    await this.dispose?.();
  }

  /** A key's value, pending writes included; undefined when absent. */
  async get(key: string): Promise<Buffer | undefined> {
    return this.pending.get(key) ?? this.writing?.get(key) ?? this.db.get(key);
  }

  /** `get` without a thread hop (LevelDB's getSync): for lookups by the thousand on the main thread. */
  getSync(key: string): Buffer | undefined {
    return this.pending.get(key) ?? this.writing?.get(key) ?? this.db.getSync(key);
  }

  /** Whether a key exists, pending writes included. */
  async has(key: string): Promise<boolean> {
    if (this.journals.size > 0) this.claim(key);
    if (this.known.has(key) || this.pending.has(key) || this.writing?.has(key)) return true;
    // getSync, not has(): classic-level's has() builds a LevelDB iterator on the main thread
    // (~45 µs each, measured by profiling `npm run bench -- import`), while a point lookup
    // of a key that is mostly in the block cache is a few µs and needs no thread hop.
    const found = this.db.getSync(key) !== undefined;
    if (found) this.known.add(key);
    return found;
  }

  /**
   * Buffers a content write (a blob or a tree, which never change). Returns false when the
   * key is pending already. Past FLUSH_OPS or FLUSH_BYTES a flush starts in the background;
   * its failure is reported by the next `flush` or `commit`.
   */
  queue(key: string, value: Buffer): boolean {
    if (this.pending.has(key) || this.writing?.has(key)) {
      if (this.journals.size > 0) this.claim(key);
      return false;
    }
    this.journal.getStore()?.add(key);
    this.pending.set(key, value);
    this.pendingBytes += value.length;
    if (this.pending.size >= FLUSH_OPS || this.pendingBytes >= FLUSH_BYTES) this.flushSoon();
    return true;
  }

  /**
   * Makes pending content writes visible. Content is idempotent, so a partial flush is
   * harmless. Flushes run one after another (`flushChain`): each batch stays readable in
   * `writing` until LevelDB has it, and a second batch never takes the first one's slot.
   * Throws NO_SPACE.
   */
  flush(): Promise<void> {
    const run = this.flushChain.then(() => this.writeBatch());
    this.flushChain = run.catch(() => {});
    return run;
  }

  private async writeBatch(): Promise<void> {
    if (this.flushError) throw this.flushError;
    if (this.pending.size === 0) return;
    await this.ensureRoom(this.pendingBytes);
    const writing = this.pending;
    this.pending = new Map();
    this.pendingBytes = 0;
    this.writing = writing;
    const batch = this.db.batch();
    for (const [key, value] of writing) batch.put(key, value);
    try {
      await batch.write();
    } catch (err) {
      // Back into pending: nothing is lost, and undoOnFailure finds what to remove there.
      for (const [key, value] of writing) if (!this.pending.has(key)) { this.pending.set(key, value); this.pendingBytes += value.length; }
      rethrowNoSpace(err, 'the index');
    } finally {
      this.writing = undefined;
    }
    for (const key of writing.keys()) this.known.add(key);
  }

  /** Flushes content, then applies `ops` atomically with fsync: the commit point of a command. Throws NO_SPACE. */
  async commit(ops: readonly IndexOp[]): Promise<void> {
    await this.flush();
    await this.ensureRoom(ops.reduce((n, op) => n + (op.type === 'put' ? op.key.length + op.value.length : 0), 0));
    try {
      await this.db.batch([...ops], {sync: true});
    } catch (err) {
      rethrowNoSpace(err, 'the index');
    }
    for (const op of ops) if (op.type === 'del') this.forget(op.key);
  }

  private forget(key: string): void {
    this.known.delete(key);
    for (const listener of this.deleteListeners) listener(key);
  }

  /**
   * Refuses (NO_SPACE) an index write of `bytes` that would leave less free space than
   * LevelDB needs to open the index again: on open it turns its log into a table, as big
   * as the log. Writes that only delete are never refused, so gc can always run.
   */
  private async ensureRoom(bytes: number): Promise<void> {
    if (bytes === 0) return;
    const st = await fs.statfs(this.location).catch(() => undefined);
    if (!st) return;
    const free = st.bavail * st.bsize;
    if (free >= 2 * bytes + LOG_MAX + INDEX_ROOM) return; // plenty: no need to size the log
    let log = 0;
    for (const name of await fs.readdir(this.location).catch(() => [] as string[]))
      if (name.endsWith('.log')) log += (await fs.stat(`${this.location}/${name}`).catch(() => ({size: 0}))).size;
    if (free < log + 2 * bytes + INDEX_ROOM)
      throw new StoreError('NO_SPACE', `the disk is full: ${mib(free)} free, and writing ${mib(bytes)} more to the index would leave less than the ${mib(log + bytes + INDEX_ROOM)} it needs to open again (to run "strata gc"); free some space`);
  }

  /**
   * Runs `work`; when it throws, removes the content it queued, pending or flushed, and
   * hands each removed key and value to `removed` (the store unlinks object files there),
   * unindexed ones first: that frees the room the delete batch may need. Content another
   * operation found in the meantime is kept (it may be named by now). Calls nest: the
   * outermost undoes. Removal is best effort: what stays is unreferenced, for gc.
   */
  async undoOnFailure<T>(work: () => Promise<T>, removed: (key: string, value: Buffer) => Promise<void>): Promise<T> {
    if (this.journal.getStore()) return work();
    const added = new Set<string>();
    this.journals.add(added);
    try {
      return await this.journal.run(added, work);
    } catch (err) {
      await this.undo(added, removed).catch(() => {});
      throw err;
    } finally {
      this.journals.delete(added);
    }
  }

  /** Another operation relies on `key`: no journal but the current one may remove it. */
  private claim(key: string): void {
    const mine = this.journal.getStore();
    for (const j of this.journals) if (j !== mine) j.delete(key);
  }

  private async undo(added: Set<string>, removed: (key: string, value: Buffer) => Promise<void>): Promise<void> {
    await this.flushChain; // a batch in flight lands (or comes back to pending) first
    const indexed: [string, Buffer][] = [];
    const unindexed: [string, Buffer][] = [];
    for (const key of added) {
      const value = this.pending.get(key);
      if (value) {
        this.pending.delete(key);
        this.pendingBytes -= value.length;
        unindexed.push([key, value]);
      } else {
        const stored = this.db.getSync(key);
        if (stored !== undefined) indexed.push([key, stored]);
      }
      this.known.delete(key);
    }
    this.flushError = undefined; // the failure is the caller's to report; what it left is gone
    for (const [key, value] of unindexed) await removed(key, value);
    if (indexed.length === 0) return;
    await this.db.batch(indexed.map(([key]) => ({type: 'del' as const, key})), {sync: true});
    for (const [key, value] of indexed) {
      this.forget(key);
      await removed(key, value);
    }
  }

  /** Calls `listener` with every key a commit deletes (the store's tree cache forgets it). */
  onDelete(listener: (key: string) => void): void {
    this.deleteListeners.push(listener);
  }

  /** Every key and value under a prefix, in key order, in memory: for the small families (tags, pins…). */
  async scan(prefix: string): Promise<[string, Buffer][]> {
    await this.flush();
    return this.db.iterator({gte: prefix, lt: `${prefix}\xff`}).all();
  }

  /**
   * Calls `each` for every key (and value) under a prefix, in key order, a bounded number
   * of entries at a time: a scan of a million blobs never holds their bytes at once.
   * Throws INDEX_CORRUPT when LevelDB cannot read a table.
   */
  async scanEach(prefix: string, each: (key: string, value: Buffer) => void | Promise<void>): Promise<void> {
    await this.flush();
    const it = this.db.iterator({gte: prefix, lt: `${prefix}\xff`});
    try {
      for (;;) {
        const step = await it.nextv(SCAN_STEP);
        if (step.length === 0) return;
        for (const [k, v] of step) await each(k, v);
      }
    } catch (err) {
      throw indexError(err);
    } finally {
      await it.close();
    }
  }

  /** Up to `limit` keys that start with `prefix`, in key order (an id prefix's matches). */
  async keysStartingWith(prefix: string, limit: number): Promise<string[]> {
    await this.flush();
    return this.db.keys({gte: prefix, lt: `${prefix}\xff`, limit}).all();
  }

  /** Compacts all of LevelDB's tables: for benchmarks that measure a settled index. */
  async compact(): Promise<void> {
    await this.flush();
    // classic-level (what `level` is in Node) has compactRange; `level`'s types do not say so.
    await (this.db as unknown as {compactRange(start: string, end: string): Promise<void>}).compactRange('\x00', '\xff');
  }

  /** Starts a flush in the background (at most one queued); its failure is reported by the next flush() or commit(). */
  private flushSoon(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    this.flush().finally(() => { this.flushQueued = false; }).catch(err => { this.flushError = err as Error; });
  }
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

/** Turns LevelDB's corruption and I/O errors into a coded error that names the index; rethrows the rest. */
function indexError(err: unknown): unknown {
  const code = (err as {code?: string}).code;
  if (typeof code === 'string' && /^LEVEL_(CORRUPTION|IO_ERROR|ITERATOR_NOT_OPEN|DATABASE_NOT_OPEN)/.test(code))
    return new StoreError('INDEX_CORRUPT', `the index cannot be read (${(err as Error).message}); "strata verify --repair" rebuilds it`, {cause: err});
  return err;
}
