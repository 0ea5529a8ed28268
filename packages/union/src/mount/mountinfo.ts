import * as fs from 'node:fs';

/** One line of /proc/self/mountinfo (proc(5)). */
export interface MountInfo {
  readonly id: number;
  readonly mountPoint: string;
  readonly fstype: string;
  readonly source: string;
  /** The superblock's options, e.g. upperdir=… for overlay. */
  readonly superOptions: ReadonlyMap<string, string>;
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040…). */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * The mounts this process sees, read fresh from the kernel each time: a mount outlives
 * the strata process that made it, and a record a crash could leave stale is never used.
 */
export function readMountInfo(file = '/proc/self/mountinfo'): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 6) continue;
    const superOptions = new Map<string, string>();
    // Overlay's option values may hold commas only when escaped; strata refuses such paths.
    for (const opt of (fields[dash + 3] ?? '').split(',')) {
      const eq = opt.indexOf('=');
      superOptions.set(unescape(eq < 0 ? opt : opt.slice(0, eq)), unescape(eq < 0 ? '' : opt.slice(eq + 1)));
    }
    out.push({id: Number(fields[0]), mountPoint: unescape(fields[4]!), fstype: fields[dash + 1]!, source: unescape(fields[dash + 2] ?? ''), superOptions});
  }
  return out;
}

/** Whether a path is a mount point (of anything). */
export function isMountPoint(dir: string, mounts = readMountInfo()): boolean {
  return mounts.some(m => m.mountPoint === dir);
}
