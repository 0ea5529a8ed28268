import {randomBytes} from 'node:crypto';
import {constants} from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Why the store in `dir` cannot be written by this process, or undefined when it can (or
 * has no index yet). LevelDB cannot open an index it cannot write (it takes a lock file and
 * may write a new log and manifest on open), so this is asked before opening it.
 */
export async function whyNotWritable(dir: string): Promise<string | undefined> {
  const index = path.join(dir, 'index');
  try {
    await fs.access(index, constants.W_OK);
    await fs.access(path.join(index, 'LOCK'), constants.W_OK).catch(err => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    });
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
    const location = path.join(parent, `index-snapshot-${process.pid}-${randomBytes(6).toString('hex')}`);
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

/** Copies (and links) the index's files into `location`; false when its manifest changed meanwhile. */
async function copyIndex(indexDir: string, location: string, link: 'hard' | 'symbolic'): Promise<boolean> {
  const manifestBefore = await manifestState(indexDir);
  const names = await fs.readdir(indexDir);
  const tables = names.filter(n => /\.(ldb|sst)$/.test(n));
  const mutable = names.filter(n => !tables.includes(n) && n !== 'LOCK' && n !== 'LOG' && n !== 'LOG.old');
  // Tables first: a log is copied after the tables its earlier records were compacted into.
  for (const name of tables) {
    const from = path.join(indexDir, name);
    if (link === 'hard') await fs.link(from, path.join(location, name));
    else await fs.symlink(from, path.join(location, name));
  }
  for (const name of mutable) {
    const from = path.join(indexDir, name);
    if ((await fs.lstat(from)).isFile()) await fs.copyFile(from, path.join(location, name));
  }
  const manifestAfter = await manifestState(indexDir);
  return manifestBefore === manifestAfter;
}

/** CURRENT's content and the size of the manifest it names: they change with every version edit. */
async function manifestState(indexDir: string): Promise<string> {
  const current = (await fs.readFile(path.join(indexDir, 'CURRENT'), 'utf8')).trim();
  const st = await fs.stat(path.join(indexDir, current));
  return `${current}:${st.size}`;
}
