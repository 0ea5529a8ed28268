import {randomBytes} from 'node:crypto';
import * as os from 'node:os';
import type {Store} from '../objects/Store.js';
import {PREFIX, leaseKey} from '../index/keys.js';
import {decodeRecord, encodeRecord} from '../index/values.js';

/** How long a lease taken on another host counts as alive: its pid cannot be checked from here. */
export const FOREIGN_LEASE_MS = 24 * 60 * 60 * 1000;

/** A lease's index record (`lease:<id>`). */
export interface LeaseRecord {
  readonly id: string;
  readonly pid: number;
  readonly host: string;
  readonly created: string;
  /** What holds it, for people: "import ./rootfs", "commit web"… */
  readonly label: string;
  /** Index keys it keeps alive (`t:…`, `b:…`, `l:…`, `i:…`, `c:<id>`), with what they reach. */
  readonly keys: readonly string[];
}

/**
 * A root held by work in progress: an import, commit or checkout that has written objects
 * it has not yet referenced from a tag or an image. While the lease lives, `collectGarbage`
 * keeps everything its keys reach. The holder calls `release()` when its refs are
 * committed; a lease whose process died is expired by the next gc (pid liveness), so a
 * crash never pins garbage forever.
 *
 * Reserved: no strata command takes a lease yet (only the gc tests do). gc and df already
 * honour lease records, so the concurrency work can have import, commit and checkout hold
 * one without changing the collector.
 */
export class Lease {
  private keys: string[] = [];

  private constructor(private readonly store: Store, readonly id: string, private readonly label: string, private readonly created: string) {}

  /** Writes an empty lease for this process, durably. */
  static async acquire(store: Store, label: string): Promise<Lease> {
    const lease = new Lease(store, `${process.pid}-${randomBytes(6).toString('hex')}`, label, new Date().toISOString());
    await lease.write();
    return lease;
  }

  /** Adds index keys to the lease and commits it (content written so far is flushed first). */
  async protect(keys: readonly string[]): Promise<void> {
    this.keys.push(...keys);
    await this.write();
  }

  /** Deletes the lease; what it protected is garbage from now on unless a ref names it. */
  async release(): Promise<void> {
    await this.store.index.commit([{type: 'del', key: leaseKey(this.id)}]);
  }

  private async write(): Promise<void> {
    const record: LeaseRecord = {id: this.id, pid: process.pid, host: os.hostname(), created: this.created, label: this.label, keys: this.keys};
    await this.store.index.commit([{type: 'put', key: leaseKey(this.id), value: encodeRecord(record)}]);
  }
}

/**
 * Whether a lease still protects anything: its process runs (same host), or it was taken
 * on another host less than FOREIGN_LEASE_MS ago. A recycled pid can keep a dead lease
 * alive until that unrelated process ends: wasted space for a while, never lost data.
 */
export function isLeaseAlive(lease: LeaseRecord, now = Date.now()): boolean {
  if (lease.host !== os.hostname()) return now - Date.parse(lease.created) < FOREIGN_LEASE_MS;
  return isProcessAlive(lease.pid);
}

/** True when a process with this pid exists (signal 0 checks without sending anything). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // it exists, owned by someone else
  }
}

/** Every lease record in the store. */
export async function listLeases(store: Store): Promise<LeaseRecord[]> {
  return (await store.index.scan(PREFIX.lease)).map(([, v]) => decodeRecord<LeaseRecord>(v));
}
