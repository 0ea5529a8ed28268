import {accessSync, constants} from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {randomHex} from '../host/randomHex.js';

/**
 * Why the store in `dir` cannot be written by this process, or undefined when it can (or
 * has no index yet). LevelDB cannot open an index it cannot write (it takes a lock file and
 * may write a new log and manifest on open), so this is asked before opening it.
 */
export async function whyNotWritable(dir: string): Promise<string | undefined> {
  const index = path.join(dir, 'index');
  try {
    // Synchronous: every command opening a store asks this, and the first call of
    // fs/promises loads it (~1.5 ms of a command that may need nothing else of it).
    accessSync(index, constants.W_OK);
    try {
      accessSync(path.join(index, 'LOCK'), constants.W_OK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EROFS') return 'on a read-only filesystem';
    if (code === 'EACCES' || code === 'EPERM') {
      const owner = await fs.stat(index).then(st => st.uid, () => undefined);
      return `not writable by you (uid ${process.getuid?.() ?? '?'}${owner !== undefined ? `; it belongs to uid ${owner}` : ''})`;
    }
    if (code === 'ENOENT') return undefined;
    throw err;
  }
}

/** How often a snapshot is tried again when the index changed while it was copied. */
const SNAPSHOT_TRIES = 20;

/**
 * A private, writable copy of a LevelDB index, for reading it without its lock: a
 * directory where the table files (immutable in LevelDB) are links to the originals and
 * the small mutable files (CURRENT, MANIFEST-*, *.log) are copies. LevelDB opens it as its
 * own: what it writes on open (a new log, a manifest, a compaction of the log) are new
 * files or renames in that directory, and a table it drops is only an unlinked link, so the
 * original is never touched.
 *
 * `link: 'hard'` (in `into`, on the index's filesystem) is for an index another process
 * may be writing: a hard link keeps a table readable after that process's compaction
 * deletes it. The copy is consistent when the manifest did not change while it was taken
 * (LevelDB appends to its manifest before it deletes a table or a log it has compacted,
 * so an unchanged manifest means every file it names was still there when linked or
 * copied); otherwise it is taken again. A record being appended to a log at that moment is
 * cut short in the copy, and LevelDB's recovery drops a torn record at the end of a log:
 * the snapshot then holds everything up to the last whole write, and every commit (written
 * with sync) that had returned. `link: 'symbolic'` (in the system's temporary directory) is
 * for a read-only index, which nobody changes. `dispose` removes the directory.
 */
export async function snapshotIndex(indexDir: string, how: {link: 'hard'; into: string} | {link: 'symbolic'}): Promise<{location: string; dispose: () => Promise<void>}> {
  const parent = how.link === 'hard' ? how.into : os.tmpdir();
  await fs.mkdir(parent, {recursive: true});
  for (let attempt = 1; ; attempt++) {
    // Named as the store's temporary files are (`<label>-<pid>-<hex>`): gc removes those of dead processes.
    const location = path.join(parent, `index-snapshot-${process.pid}-${randomHex(6)}`);
    await fs.mkdir(location);
    const dispose = () => fs.rm(location, {recursive: true, force: true});
    try {
      if (await copyIndex(indexDir, location, how.link)) return {location, dispose};
    } catch (err) {
      await dispose();
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' || attempt >= SNAPSHOT_TRIES) throw err; // a file went away while copied: again
      continue;
    }
    await dispose();
    if (attempt >= SNAPSHOT_TRIES) throw new Error(`the index at ${indexDir} kept changing while it was copied (${SNAPSHOT_TRIES} tries)`);
  }
}

/**
 * Copies the index's manifest and logs into `location` and links the tables its manifest
 * names; false when the manifest changed meanwhile.
 *
 * Only the tables the manifest names: a table LevelDB is still writing (a compaction's
 * output, not yet in the manifest) has a file number at or above the manifest's next file
 * number, the first number the snapshot's own LevelDB then gives its new files, and a
 * hard link of that name would let it truncate the holder's file (measured: "Corruption:
 * bad block type" in the holder, before this rule).
 */
async function copyIndex(indexDir: string, location: string, link: 'hard' | 'symbolic'): Promise<boolean> {
  const manifestBefore = await manifestState(indexDir);
  const current = manifestBefore.split(':')[0]!;
  await fs.copyFile(path.join(indexDir, 'CURRENT'), path.join(location, 'CURRENT'));
  await fs.copyFile(path.join(indexDir, current), path.join(location, current));
  const tables = liveTables(await fs.readFile(path.join(location, current)));
  const names = await fs.readdir(indexDir);
  for (const name of names) {
    const m = /^(\d+)\.(ldb|sst)$/.exec(name);
    if (!m || !tables.has(Number(m[1]))) continue;
    const from = path.join(indexDir, name);
    if (link === 'hard') await fs.link(from, path.join(location, name));
    else await fs.symlink(from, path.join(location, name));
  }
  // Logs after the tables: a log is copied after the tables its earlier records went into.
  for (const name of names) if (/^\d+\.log$/.test(name)) await fs.copyFile(path.join(indexDir, name), path.join(location, name));
  const manifestAfter = await manifestState(indexDir);
  return manifestBefore === manifestAfter;
}

/**
 * The file numbers of the tables a LevelDB manifest names: its records (LevelDB's log
 * format: 32 KiB blocks of fragments, each with a 7-byte header) are version edits, and
 * the live tables are those added by a `NewFile` field and not removed by a `DeletedFile`
 * one since (leveldb's db/version_edit.cc and db/log_format.h give the encoding).
 */
export function liveTables(manifest: Buffer): Set<number> {
  const live = new Set<number>();
  for (const record of logRecords(manifest)) {
    let at = 0;
    const varint = (): number => {
      let n = 0, shift = 0;
      for (;;) {
        const b = record[at++]!;
        n += (b & 0x7f) * 2 ** shift;
        if (b < 0x80) return n;
        shift += 7;
      }
    };
    const slice = () => { const n = varint(); at += n; }; // not `at += varint()`: that reads `at` first
    while (at < record.length) {
      switch (varint()) {
        case 1: slice(); break; // comparator
        case 2: case 3: case 4: case 9: varint(); break; // log number, next file, last sequence, previous log
        case 5: varint(); slice(); break; // compact pointer: level, key
        case 6: varint(); live.delete(varint()); break; // deleted file: level, number
        case 7: { varint(); const n = varint(); varint(); slice(); slice(); live.add(n); break; } // new file: level, number, size, smallest, largest
        default: return live; // a field this reader does not know: stop rather than guess
      }
    }
  }
  return live;
}

/** The records of a LevelDB log file, fragments joined; a torn last record is left out. */
function logRecords(buf: Buffer): Buffer[] {
  const BLOCK = 32 * 1024;
  const out: Buffer[] = [];
  let parts: Buffer[] = [];
  for (let at = 0; at + 7 <= buf.length;) {
    const left = BLOCK - (at % BLOCK);
    if (left < 7) { at += left; continue; } // a block's trailer
    const length = buf.readUInt16LE(at + 4);
    const type = buf[at + 6]!;
    const data = buf.subarray(at + 7, at + 7 + length);
    if (type === 0 || data.length < length) break; // zero padding, or the torn end
    at += 7 + length;
    if (type === 1) out.push(data); // FULL
    else if (type === 2) parts = [data]; // FIRST
    else if (type === 3) parts.push(data); // MIDDLE
    else if (type === 4) { parts.push(data); out.push(Buffer.concat(parts)); parts = []; } // LAST
  }
  return out;
}

/** CURRENT's content and the size of the manifest it names: they change with every version edit. */
async function manifestState(indexDir: string): Promise<string> {
  const current = (await fs.readFile(path.join(indexDir, 'CURRENT'), 'utf8')).trim();
  const st = await fs.stat(path.join(indexDir, current));
  return `${current}:${st.size}`;
}
