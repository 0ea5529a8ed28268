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

/**
 * A private, writable view of a read-only LevelDB index, for commands that only read: a
 * temporary directory where the table files (immutable in LevelDB) are symlinks to the
 * originals and the small mutable files (CURRENT, MANIFEST-*, *.log) are copies. LevelDB
 * opens it as its own: what it writes on open (a new log, a manifest, a compaction of the
 * log) are new files or renames in the temporary directory, and a table it drops is only
 * an unlinked symlink, so the original is never touched. `dispose` removes the directory.
 */
export async function snapshotIndex(indexDir: string): Promise<{location: string; dispose: () => Promise<void>}> {
  const location = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-readonly-index-'));
  try {
    for (const name of await fs.readdir(indexDir)) {
      if (name === 'LOCK' || name === 'LOG' || name === 'LOG.old') continue;
      const from = path.join(indexDir, name);
      if (/\.(ldb|sst)$/.test(name)) await fs.symlink(from, path.join(location, name));
      else if ((await fs.lstat(from)).isFile()) await fs.copyFile(from, path.join(location, name));
    }
  } catch (err) {
    await fs.rm(location, {recursive: true, force: true});
    throw err;
  }
  return {location, dispose: () => fs.rm(location, {recursive: true, force: true})};
}
