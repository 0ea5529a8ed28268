import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type {ExecutionContext} from 'ava';
import {type Digest, Store} from '../src/index.js';

/** A fresh temporary directory, deleted when the test ends. */
export async function tempDir(t: ExecutionContext, label = 'strata-test-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), label));
  t.teardown(() => fs.rm(dir, {recursive: true, force: true}));
  return dir;
}

/** A fresh store in a temporary directory; closed and deleted when the test ends. */
export async function openTempStore(t: ExecutionContext): Promise<Store> {
  const store = await Store.open(path.join(await tempDir(t, 'strata-store-'), 'store'), {create: true});
  t.teardown(() => store.close());
  return store;
}

/** Writes a tree of files: path -> content (a string), or null for a directory. */
export async function writeTree(root: string, files: Record<string, string | null>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(root, rel);
    if (content === null) await fs.mkdir(p, {recursive: true});
    else {
      await fs.mkdir(path.dirname(p), {recursive: true});
      await fs.writeFile(p, content);
    }
  }
}

/** What a layer holds at one path, in a form tests compare whole. */
export interface DumpEntry {
  kind: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  opaque?: boolean;
  xattrs?: Record<string, string>;
  content?: string;
  target?: string;
  dev?: [number, number];
}

/** Every path of a layer ('/' for its root) with its metadata and, for files, its bytes (latin1). */
export async function dumpLayer(store: Store, id: Digest): Promise<Record<string, DumpEntry>> {
  const out: Record<string, DumpEntry> = {};
  const xattrsOf = (x?: Record<string, Buffer>) => (x ? {xattrs: Object.fromEntries(Object.entries(x).map(([k, v]) => [k, v.toString()]))} : {});
  const visit = async (d: Digest, at: string) => {
    const tree = await store.getTree(d);
    out[at || '/'] = {kind: 'dir', mode: tree.mode, uid: tree.uid, gid: tree.gid, mtime: tree.mtime, ...(tree.opaque ? {opaque: true} : {}), ...xattrsOf(tree.xattrs)};
    for (const e of tree.entries) {
      const p = `${at}/${e.name}`;
      if (e.kind === 'dir') { await visit(e.tree, p); continue; }
      if (e.kind === 'whiteout') { out[p] = {kind: 'whiteout'}; continue; }
      const base: DumpEntry = {kind: e.kind, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, ...xattrsOf(e.xattrs)};
      if (e.kind === 'file' || e.kind === 'hardlink') {
        const bytes = await store.readBlob(e.blob);
        if (bytes.length !== e.size) throw new Error(`${p}: blob has ${bytes.length} bytes, entry says ${e.size}`);
        base.content = bytes.toString('latin1');
      }
      if (e.kind === 'symlink' || e.kind === 'hardlink') base.target = e.target;
      if (e.kind === 'char' || e.kind === 'block') base.dev = [e.devmajor, e.devminor];
      out[p] = base;
    }
  };
  await visit(id, '');
  return out;
}

/** Runs a program to completion; throws (naming it) if it is missing or fails. */
export function run(cmd: string, args: readonly string[], input?: Buffer): Buffer {
  const r = spawnSync(cmd, args, {input});
  if (r.error) throw new Error(`${cmd} could not run (${r.error.message}): this test needs it installed`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.toString()}`);
  return r.stdout;
}

/** Fails the test unless running as root (CI is): chown and mknod need it. */
export function needRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('this test needs root (chown, mknod); CI runs as root');
}

export const T = 1_700_000_000;

/** A directory with every kind directory import stores, owners and odd modes included. */
export async function richDir(dir: string): Promise<void> {
  needRoot();
  await writeTree(dir, {'a.txt': 'alpha', 'sub/b.txt': 'beta', 'sub/deeper/c.bin': '\x00\x01\xff', 'empty': null, 'zero': ''});
  await fs.symlink('a.txt', path.join(dir, 'link'));
  await fs.symlink('/nowhere/at/all', path.join(dir, 'sub', 'dangling'));
  await fs.link(path.join(dir, 'sub', 'b.txt'), path.join(dir, 'b-again'));
  run('mkfifo', [path.join(dir, 'pipe')]);
  await fs.chmod(path.join(dir, 'a.txt'), 0o4755);
  await fs.chmod(path.join(dir, 'sub', 'deeper'), 0o2750);
  await fs.chmod(path.join(dir, 'empty'), 0o1777);
  await fs.chmod(path.join(dir, 'zero'), 0o600);
  await fs.chown(path.join(dir, 'sub', 'b.txt'), 1000, 2000);
  await fs.lchown(path.join(dir, 'link'), 33, 44);
  await fs.chown(path.join(dir, 'pipe'), 7, 8);
  for (const p of ['a.txt', 'sub/b.txt', 'sub/deeper/c.bin', 'sub/deeper', 'sub', 'empty', 'zero', 'pipe', '.'])
    await fs.utimes(path.join(dir, p), T + 0.75, T + 0.75); // fractions are dropped: tar's whole seconds
  await fs.lutimes(path.join(dir, 'link'), T - 10, T - 10);
}

