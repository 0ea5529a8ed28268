import * as fs from 'node:fs';
import * as path from 'node:path';
import {StoreError} from '../errors.js';
import {isProcessAlive} from '../maintenance/leases.js';

/** How long a command waits for the store when STRATA_LOCK_TIMEOUT_MS is not set. */
export const DEFAULT_LOCK_TIMEOUT_MS = 60_000;

/**
 * Who holds a store: written to `<store>/holder` by the process that has just taken the
 * index's lock, so that a process waiting for it can say whom it waits for. LevelDB's
 * LOCK file names no one; this file does, and is only ever advice: it may be stale (its
 * process gone) or, for a moment after another process took the lock, name the previous one.
 */
export interface StoreHolder {
  readonly pid: number;
  /** The command line, as `strata import ./rootfs` (argv after node and the script). */
  readonly command: string;
  /** When it took the lock (ISO 8601). */
  readonly since: string;
}

/** The holder file of the store in `dir` (docs/format.md, "The index (LevelDB)", where the store directory's files are listed). */
export function holderPath(dir: string): string {
  return path.join(dir, 'holder');
}

/**
 * The milliseconds to wait for a busy store, from STRATA_LOCK_TIMEOUT_MS (unset: 60 s).
 * Throws BAD_SETTING for anything but a whole number of milliseconds, so that a typo
 * never turns into "wait forever" or "never wait".
 */
export function lockTimeoutFromEnv(value = process.env.STRATA_LOCK_TIMEOUT_MS): number {
  if (value === undefined) return DEFAULT_LOCK_TIMEOUT_MS;
  if (!/^\d+$/.test(value.trim()))
    throw new StoreError('BAD_SETTING', `STRATA_LOCK_TIMEOUT_MS must be a whole number of milliseconds, not "${value}"`);
  return Number(value.trim());
}

/** The command line of this process as a user typed it: `strata ps --json`. */
export function ownCommand(): string {
  const args = process.argv.slice(2).map(a => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a)));
  return ['strata', ...args].join(' ').slice(0, 200);
}

/**
 * Records this process as the store's holder. Best effort: a store this user cannot write
 * (opened read-only) keeps the previous record, and nothing depends on the file.
 */
export function recordHolder(dir: string): void {
  const holder: StoreHolder = {pid: process.pid, command: ownCommand(), since: new Date().toISOString()};
  try {
    fs.writeFileSync(holderPath(dir), `${JSON.stringify(holder)}\n`);
  } catch { /* advice only */ }
}

/** The process that holds the store, when the holder file names a live process other than this one. */
export function readHolder(dir: string): StoreHolder | undefined {
  try {
    const h = JSON.parse(fs.readFileSync(holderPath(dir), 'utf8')) as Partial<StoreHolder>;
    if (typeof h.pid !== 'number' || typeof h.command !== 'string' || typeof h.since !== 'string') return undefined;
    if (h.pid === process.pid || !isProcessAlive(h.pid)) return undefined;
    return h as StoreHolder;
  } catch {
    return undefined;
  }
}

/** "strata process 4242 (strata import ./rootfs, since 10:02:03)", or "another strata process". */
export function describeHolder(holder: StoreHolder | undefined): string {
  if (!holder) return 'another strata process';
  return `strata process ${holder.pid} (${holder.command}, since ${holder.since.slice(11, 19)} UTC)`;
}

/** What a caller learns while it waits for a busy store. */
export interface LockWait {
  /** The holder as far as the holder file knows. */
  readonly holder: StoreHolder | undefined;
  /** Milliseconds waited so far. */
  readonly waitedMs: number;
}

/**
 * Calls `attempt` until it stops failing with a lock error (`isLocked`), backing off from
 * 5 ms up to `maxDelayMs` (100 ms), for at most `timeoutMs`; `onWait` is told once, after `noticeAfterMs`,
 * whom the caller waits for. Then fails with STORE_LOCKED naming the holder. Any other
 * error of `attempt` is thrown as it is.
 */
export async function waitForLock<T>(dir: string, attempt: () => Promise<T>, isLocked: (err: unknown) => boolean,
  options: {timeoutMs: number; onWait?: (w: LockWait) => void; noticeAfterMs?: number; maxDelayMs?: number}): Promise<T> {
  const started = Date.now();
  const noticeAfter = options.noticeAfterMs ?? 1000;
  let noticed = false;
  let delay = 5;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (!isLocked(err)) throw err;
      const waited = Date.now() - started;
      if (!noticed && options.onWait && waited >= noticeAfter) {
        noticed = true;
        options.onWait({holder: readHolder(dir), waitedMs: waited});
      }
      if (waited >= options.timeoutMs) {
        const secs = options.timeoutMs >= 1000 ? `${Math.round(options.timeoutMs / 1000)} s` : `${options.timeoutMs} ms`;
        throw new StoreError('STORE_LOCKED', `the store is busy: ${describeHolder(readHolder(dir))} has held it longer than ${secs} (set STRATA_LOCK_TIMEOUT_MS to wait longer)`, {cause: err});
      }
      await new Promise(r => setTimeout(r, Math.min(delay, Math.max(1, options.timeoutMs - waited))));
      delay = Math.min(delay * 2, options.maxDelayMs ?? 100);
    }
  }
}
