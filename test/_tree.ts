import * as fs from 'node:fs';
import * as path from 'node:path';

/** One host path as a test compares it: kind, permission bits, and content or link target. */
export type HostEntry = {kind: 'dir'; mode: number} | {kind: 'file'; mode: number; content: string; links: number} | {kind: 'symlink'; target: string};

/** Every path under `root` (relative, sorted) with what it is; hardlinks show as a link count. */
export function readHostTree(root: string): Record<string, HostEntry> {
  const out: Record<string, HostEntry> = {};
  const walk = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name), r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(p);
      if (st.isDirectory()) {
        out[r] = {kind: 'dir', mode: st.mode & 0o7777};
        walk(p, r);
      } else if (st.isSymbolicLink()) out[r] = {kind: 'symlink', target: fs.readlinkSync(p)};
      else out[r] = {kind: 'file', mode: st.mode & 0o7777, content: fs.readFileSync(p, 'utf8'), links: st.nlink};
    }
  };
  walk(root, '');
  return out;
}
