import {spawnSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type {ExecutionContext} from 'ava';

/**
 * Runs a peer tool (umoci, skopeo, zstd); fails the test loudly when the tool is missing
 * or exits non-zero, since CI installs every peer (scripts/setup.js).
 */
export function peer(t: ExecutionContext, cmd: string, args: readonly string[], options: {cwd?: string} = {}): string {
  const r = spawnSync(cmd, args, {cwd: options.cwd, encoding: 'utf8', maxBuffer: 64 << 20});
  if (r.error) throw new Error(`${cmd} is not installed (scripts/setup.js installs it): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** What a tree comparison looks at for one path. */
export interface Node {
  readonly type: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly content?: string;
  readonly target?: string;
  readonly rdev?: number;
}

/**
 * Every path under `root` (the root itself as `.`) with its type, permission bits, owner,
 * content digest or link target; and hardlink groups (paths sharing an inode) sorted.
 */
export async function snapshot(root: string): Promise<{nodes: Record<string, Node>; links: string[][]}> {
  const nodes: Record<string, Node> = {};
  const inodes = new Map<number, string[]>();
  const visit = async (rel: string) => {
    const p = path.join(root, rel);
    const st = await fs.lstat(p);
    const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'other';
    const node: Node = {
      type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid,
      ...(type === 'file' ? {content: createHash('sha256').update(await fs.readFile(p)).digest('hex')} : {}),
      ...(type === 'symlink' ? {target: await fs.readlink(p)} : {}),
      ...(type === 'char' || type === 'block' ? {rdev: st.rdev} : {}),
    };
    if (type === 'symlink') delete (node as {mode?: number}).mode; // Linux symlinks are always 0777
    nodes[rel] = node;
    if (type === 'file' && st.nlink > 1) inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), rel]);
    if (type === 'dir') for (const name of (await fs.readdir(p)).sort()) await visit(rel === '.' ? name : `${rel}/${name}`);
  };
  await visit('.');
  return {nodes, links: [...inodes.values()].map(g => g.sort()).sort()};
}
