import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * `mkdir -p` that cannot spin: Node's recursive mkdir retries forever where mkdir fails
 * with ENOENT although the parent exists (`/proc/x`: procfs refuses new directories that
 * way), so each level is made here with a plain mkdir. Returns the first directory it
 * created (to remove on failure), or undefined when `dir` existed. Throws ENOTDIR when a
 * component is not a directory, and ENOENT naming the parent that refused.
 */
export function makeDirs(dir: string): string | undefined {
  dir = path.resolve(dir);
  try {
    fs.mkdirSync(dir);
    return dir;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if (fs.statSync(dir).isDirectory()) return undefined;
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), {code: 'ENOTDIR', syscall: 'mkdir', path: dir});
    }
    if (code !== 'ENOENT') throw err;
    const parent = path.dirname(dir);
    if (parent === dir) throw err;
    const first = makeDirs(parent);
    try {
      fs.mkdirSync(dir);
    } catch (again) {
      if ((again as NodeJS.ErrnoException).code !== 'ENOENT') throw again;
      throw Object.assign(new Error(`ENOENT: ${parent} does not take new directories (mkdir '${dir}')`), {code: 'ENOENT', syscall: 'mkdir', path: dir}, {cause: again});
    }
    return first ?? dir;
  }
}

/** The names in a directory of the store, or none when it does not exist (yet). */
export function readdirOrEmpty(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
