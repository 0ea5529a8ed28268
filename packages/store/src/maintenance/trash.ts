import * as fs from 'node:fs';
import * as path from 'node:path';
import {isProcessAlive} from './leases.js';
import {readdirOrEmpty} from '../makeDirs.js';
import {randomHex} from '../host/randomHex.js';

/**
 * Where gc puts the object files it removes, for a while: `trash/<ms>-<pid>-<hex>/<64 hex>`,
 * one directory per gc run, named by when it began.
 *
 * Why not unlink: a writer in another process may have found an object file in place
 * (and so not written it) just before gc removed it, and only names it in the index at its
 * next write. That writer checks, under the index's lock, that the object files of its
 * batch exist, and takes one back from the trash when it does not (`restoreFromTrash`).
 * A trash directory is emptied once no process that was running when it was made is
 * still alive (`emptyTrash`): by then every such writer has checked its batches.
 */
export function trashRoot(storeDir: string): string {
  return path.join(storeDir, 'trash');
}

/** A new trash directory for one gc run. */
export function makeTrash(storeDir: string): string {
  const dir = path.join(trashRoot(storeDir), `${Date.now()}-${process.pid}-${randomHex(4)}`);
  fs.mkdirSync(dir, {recursive: true});
  return dir;
}

/** Moves an object file to the trash; false when it was not there. */
export function moveToTrash(trash: string, objectFile: string, hex: string): boolean {
  try {
    fs.renameSync(objectFile, path.join(trash, hex));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Puts an object file back from any trash directory; false when no trash has it. */
export function restoreFromTrash(storeDir: string, hex: string, objectFile: string): boolean {
  for (const run of readdirOrEmpty(trashRoot(storeDir))) {
    const from = path.join(trashRoot(storeDir), run, hex);
    try {
      fs.mkdirSync(path.dirname(objectFile), {recursive: true});
      fs.linkSync(from, objectFile);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return true;
      if (code !== 'ENOENT') throw err;
    }
  }
  return false;
}

/**
 * Empties the trash directories that no running process can still need: made before
 * `oldestStart` (the start of the oldest process that holds a lease, or now), and not by
 * a gc still running. Returns the bytes freed.
 */
export function emptyTrash(storeDir: string, oldestStart: number): {files: number; bytes: number} {
  let files = 0;
  let bytes = 0;
  for (const run of readdirOrEmpty(trashRoot(storeDir))) {
    const [made, pid] = run.split('-').map(Number);
    if (!(made! < oldestStart) || (pid !== process.pid && isProcessAlive(pid!))) continue;
    const dir = path.join(trashRoot(storeDir), run);
    for (const name of readdirOrEmpty(dir)) {
      const st = fs.lstatSync(path.join(dir, name), {throwIfNoEntry: false});
      if (st) { files++; bytes += st.size; }
    }
    fs.rmSync(dir, {recursive: true, force: true});
  }
  return {files, bytes};
}
