import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type {Digest} from '../objects/digest.js';
import type {Store} from '../objects/Store.js';

/** `objects/small/<2 hex>/<62 hex>`: a spilled copy of an inline blob, for the data-only lower. */
export function smallObjectPath(store: Store, blob: Digest): string {
  const hex = blob.slice(3);
  return path.join(store.dir, 'objects', 'small', hex.slice(0, 2), hex.slice(2));
}

/**
 * Gives every blob of `spills` (digest -> its checked inline bytes) its spilled file in
 * `objects/small/`, writing those that are missing; returns how many it wrote.
 *
 * The files are written under their final names inside a fresh build directory,
 * `tmp/small-<pid>-<random>/<2>/<62>`: one create and one write each, nothing more. Then,
 * in this order:
 * 1. one syncfs: every byte and name in the build directory is on disk;
 * 2. each fan-out directory that `objects/small` lacks is renamed there whole, one rename
 *    for all its files (the first build in a store); the files of the others are renamed
 *    one by one (over a file another process placed meanwhile: same name, same bytes);
 * 3. the directories those renames changed are fsynced: the new names are on disk before
 *    the caller's image, which names them, gets its own.
 * So a file under its final name was whole on disk before it got that name, and a kill
 * leaves the build directory in tmp/, which gc removes once this process has ended.
 * One thread, plain synchronous calls: creating a file is the kernel's work, and
 * HostWriter's threads measured slower here (docs/benchmarks.md).
 */
export function spillSmallBlobs(store: Store, spills: ReadonlyMap<Digest, Uint8Array>): number {
  const small = path.join(store.dir, 'objects', 'small');
  const byFan = new Map<string, [string, Uint8Array][]>();
  const fanExists = new Map<string, boolean>();
  for (const [blob, data] of spills) {
    const fan = blob.slice(3, 5);
    let exists = fanExists.get(fan);
    if (exists === undefined) fanExists.set(fan, exists = fs.existsSync(path.join(small, fan)));
    // A fan-out directory that does not exist holds none of them: one stat, not one per blob.
    if (exists && fs.existsSync(path.join(small, fan, blob.slice(5)))) continue;
    let list = byFan.get(fan);
    if (!list) byFan.set(fan, list = []);
    list.push([blob.slice(5), data]);
  }
  if (byFan.size === 0) return 0;

  const build = store.tmpPath('small');
  let written = 0;
  try {
    fs.mkdirSync(build);
    for (const [fan, files] of byFan) {
      fs.mkdirSync(path.join(build, fan));
      for (const [name, data] of files) {
        const fd = fs.openSync(path.join(build, fan, name), 'wx', 0o444);
        try {
          for (let at = 0; at < data.length;) at += fs.writeSync(fd, data, at);
        } finally {
          fs.closeSync(fd);
        }
        written++;
      }
    }
    syncFilesystem(store.dir);
    const smallExisted = fs.existsSync(small);
    fs.mkdirSync(small, {recursive: true});
    const changed = new Set<string>([smallExisted ? small : path.dirname(small)]);
    for (const [fan, files] of byFan) {
      if (!fs.existsSync(path.join(small, fan)) && renameIfAbsent(path.join(build, fan), path.join(small, fan))) {
        changed.add(small);
        continue;
      }
      fs.mkdirSync(path.join(small, fan), {recursive: true});
      for (const [name] of files) fs.renameSync(path.join(build, fan, name), path.join(small, fan, name));
      changed.add(small).add(path.join(small, fan));
    }
    for (const dir of changed) fsyncDir(dir);
  } finally {
    fs.rmSync(build, {recursive: true, force: true});
  }
  return written;
}

/** Renames a directory to a name that must not exist; false when another process made it first. */
function renameIfAbsent(from: string, to: string): boolean {
  try {
    fs.renameSync(from, to);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
    throw err;
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** syncfs(2) of the filesystem holding `dir` (`sync -f`, coreutils; Node has no binding), else sync(2). */
function syncFilesystem(dir: string): void {
  const r = spawnSync('sync', ['-f', dir], {stdio: 'ignore'});
  if (r.error || r.status !== 0) {
    const all = spawnSync('sync', [], {stdio: 'ignore'});
    if (all.error || all.status !== 0) throw new Error(`sync failed: ${(all.error ?? r.error)?.message ?? `exit ${all.status}`}`);
  }
}
