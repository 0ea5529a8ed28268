import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {readdirOrEmpty} from '../makeDirs.js';
import {randomHex} from '../host/randomHex.js';

/** How long a lease taken on another host counts as alive: its pid cannot be checked from here. */
export const FOREIGN_LEASE_MS = 24 * 60 * 60 * 1000;

/** A lease as gc reads it: who holds it and the index keys it keeps alive (with what they reach). */
export interface LeaseRecord {
  readonly id: string;
  readonly pid: number;
  readonly host: string;
  readonly created: string;
  /** What holds it, for people: "strata import ./rootfs"… */
  readonly label: string;
  /** Index keys it keeps alive (`b:…`, `t:…`, `l:…`, `i:…`), with what they reach. */
  readonly keys: readonly string[];
}

/** Where a store's leases are: one file per process that writes (docs/format.md). */
export function leaseDir(storeDir: string): string {
  return path.join(storeDir, 'leases');
}

/**
 * A root held by work in progress (Nix's temporary roots, containerd's leases): the keys a
 * process has written to the index or relies on finding there, from before it writes or
 * relies on them until its refs name them and it ends. While its process lives, gc keeps
 * everything the keys reach; a lease whose process died is ignored and removed by the
 * next gc, so a crash never pins garbage for good.
 *
 * On disk, `leases/<pid>-<hex>`: a JSON header line (`pid`, `host`, `created`, `label`),
 * then one key per line, appended. A file rather than index entries: a lease grows by
 * one key per object written, and appending to a file costs one write per batch, where
 * index entries would be as many puts again (and as many deletes at the end). Appends are
 * made under the index's lock, just before the batch they cover, and gc reads leases under
 * that lock too (docs/design.md, "Many processes on one store"), so gc never reads half a
 * batch's keys: it sees a lease's keys before their content, or not the content at all.
 */
export class Lease {
  private fd: number | undefined;

  private constructor(readonly file: string, private readonly header: string) {}

  /** The lease's name in listLeases (its file's name). */
  get id(): string {
    return path.basename(this.file);
  }

  /**
   * Takes a lease for this process in the store at `storeDir`, empty: its file exists from
   * now on, so gc knows from when this process may rely on what it finds (trash.ts).
   */
  static acquire(storeDir: string, label: string): Lease {
    const id = `${process.pid}-${randomHex(6)}`;
    const header = JSON.stringify({pid: process.pid, host: os.hostname(), created: new Date().toISOString(), label});
    const lease = new Lease(path.join(leaseDir(storeDir), id), header);
    fs.mkdirSync(path.dirname(lease.file), {recursive: true});
    lease.fd = fs.openSync(lease.file, 'wx');
    fs.writeSync(lease.fd, `${header}\n`);
    return lease;
  }

  /** Adds keys (appended at once: a reader in another process sees them when this returns). */
  protect(keys: Iterable<string>): void {
    if (this.fd === undefined) return; // released
    let text = '';
    for (const k of keys) text += `${k}\n`;
    if (text !== '') fs.writeSync(this.fd, text);
  }

  /** Removes the lease; what it protected is garbage from now on unless a ref names it. */
  release(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
    fs.rmSync(this.file, {force: true});
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

/**
 * Every lease of the store at `storeDir`. A file whose header cannot be read (its process
 * was killed while writing it) is a lease of nobody: pid 0, never alive.
 */
export function listLeases(storeDir: string): LeaseRecord[] {
  const dir = leaseDir(storeDir);
  const out: LeaseRecord[] = [];
  for (const id of readdirOrEmpty(dir)) {
    let text: string;
    try {
      text = fs.readFileSync(path.join(dir, id), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
      throw err;
    }
    const lines = text.split('\n');
    // The last line is whole only when the text ends with a newline: a torn append is not a key.
    const keys = lines.slice(1, -1);
    let header: {pid?: unknown; host?: unknown; created?: unknown; label?: unknown} = {};
    try {
      header = JSON.parse(lines[0] ?? '') as typeof header;
    } catch { /* torn header: nobody's */ }
    out.push({
      id,
      pid: typeof header.pid === 'number' ? header.pid : 0,
      host: typeof header.host === 'string' ? header.host : os.hostname(),
      created: typeof header.created === 'string' ? header.created : new Date(0).toISOString(),
      label: typeof header.label === 'string' ? header.label : '',
      keys,
    });
  }
  return out;
}

/** Removes a lease file (of a process that died). */
export function removeLease(storeDir: string, id: string): void {
  fs.rmSync(path.join(leaseDir(storeDir), id), {force: true});
}
