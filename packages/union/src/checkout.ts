import * as path from 'node:path';
// Names are bytes (a name that is not UTF-8 is written as it is): hostFs converts at the fs calls.
import {type HostEntryJob, type Store, type Tree, type Xattrs, HostWriter, hostFs as fs, makeDirs, writeXattrsSync, randomHex} from '@strata/store';
import {UnionError} from './errors.js';
import type {UnionView} from './UnionView.js';
import {type ViewEntry, entryFromTree, entryXattrs} from './ViewEntry.js';
import {type ViewPath, ROOT, childPath} from './viewPath.js';

export interface CheckoutResult {
  readonly files: number;
  readonly dirs: number;
  readonly symlinks: number;
  readonly hardlinks: number;
  readonly bytes: number;
  /** Device nodes and fifos that could not be created (mknod needs root). */
  readonly skipped: string[];
}

/**
 * Materialises a view (or, with `from`, one directory of it) into `dir` (which must be
 * missing or empty): modes, owners
 * (when root), mtimes, symlinks, hardlinks. Large lower files are copied from their
 * object files with FICLONE, a reflink where the filesystem offers one; never
 * hardlinked, since a change to the checkout must not reach the store. Every file is
 * checked against its digest (OBJECT_CORRUPT). The tree is written beside `dir` and
 * renamed into place at the end, so a checkout that fails leaves nothing, not even the
 * parent directories it made.
 */
export async function checkout(store: Store, view: UnionView, dir: string, options: {from?: ViewPath; onProgress?: (files: number, bytes: number) => void} = {}): Promise<CheckoutResult> {
  dir = path.resolve(dir);
  const existing = fs.existsSync(dir) ? fs.readdirSync(dir) : undefined;
  if (existing && existing.length > 0) throw new UnionError('EEXIST', `${dir} is not empty; checkout needs a new or empty directory`, {path: dir});
  // Canonical, so the paths of the walk match the layer paths that lower hardlinks name.
  const from = await view.realpath(options.from ?? ROOT);
  const top = await view.stat(from);
  if (top.kind !== 'dir') throw new UnionError('ENOTDIR', `ENOTDIR: not a directory, scandir '${from}'`, {syscall: 'scandir', path: from});
  const madeParent = makeDirs(path.dirname(dir));
  const work = `${dir}.strata-${randomHex(6)}`;
  fs.mkdirSync(work);
  try {
    const result = await writeTree(store, view, from, top, work, options.onProgress);
    if (existing) fs.rmdirSync(dir); // the empty target gives way
    fs.renameSync(work, dir);
    return result;
  } catch (err) {
    fs.rmSync(work, {recursive: true, force: true});
    if (madeParent) fs.rmSync(madeParent, {recursive: true, force: true});
    throw err;
  }
}

async function writeTree(store: Store, view: UnionView, from: ViewPath, top: ViewEntry, dir: string, onProgress: ((files: number, bytes: number) => void) | undefined): Promise<CheckoutResult> {
  const counts = {files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0};
  const skipped: string[] = [];
  const root = process.getuid?.() === 0;
  const written = {files: 0, bytes: 0};
  const progress = (files: number, bytes: number) => {
    written.files += files;
    written.bytes += bytes;
    onProgress?.(written.files, written.bytes);
  };
  const writer = new HostWriter(store.dir, {owners: root}, progress);
  // Set after every file is written, deepest first: a directory's mtime then survives
  // its entries, and a directory without write permission is filled before it gets its mode.
  const dirs: {host: string; e: ViewEntry}[] = [];
  // Hardlinks are made after the files they name are written (by other threads).
  const upperFirst = new Map<number, string>();
  const upperLinks: {first: string; host: string}[] = [];
  const lowerLinks: {host: string; e: ViewEntry}[] = [];

  const visit = async (p: ViewPath, e: ViewEntry, host: string, tree?: Tree): Promise<void> => {
    switch (e.kind) {
      case 'dir':
        fs.mkdirSync(host);
        counts.dirs++;
        dirs.push({host, e});
        // A lower directory the upper adds nothing to is read from its tree, without the view's lookups.
        if (e.source === 'lower' && e.tree) await visitTree(tree ?? store.getTreeSync(e.tree, {cache: false}), p, host);
        else for (const child of await view.readdir(p)) await visit(childPath(p, child.name), child, path.join(host, child.name));
        return;
      case 'file':
        if (e.ino !== undefined && (e.nlink ?? 1) > 1) {
          const first = upperFirst.get(e.ino);
          if (first) {
            upperLinks.push({first, host});
            return;
          }
          upperFirst.set(e.ino, host);
        }
        if (e.linkOf) {
          lowerLinks.push({host, e});
          return;
        }
        await writer.write(fileJob(store, e, host, xattrsOf(e)));
        counts.files++;
        counts.bytes += e.size;
        return;
      case 'symlink':
        await writer.write({kind: 'symlink', dest: host, target: e.target!, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, size: 0, ...xattrsOf(e)});
        counts.symlinks++;
        return;
      default:
        if (!fs.mknodSync(host, e.kind as 'fifo' | 'char' | 'block', e.devmajor ?? 0, e.devminor ?? 0)) {
          skipped.push(p);
          return;
        }
        setMeta(host, e);
    }
  };
  const visitTree = async (tree: Tree, p: ViewPath, host: string): Promise<void> => {
    for (const t of tree.entries) {
      if (t.kind === 'whiteout') continue;
      const sub = t.kind === 'dir' ? store.getTreeSync(t.tree, {cache: false}) : undefined;
      await visit(childPath(p, t.name), entryFromTree(t, sub), path.join(host, t.name), sub);
    }
  };
  // As root every xattr is restored; otherwise only user.* (trusted.* and security.* need
  // privilege). An upper entry's are those a commit would keep (`entryXattrs`).
  const xattrsOf = (e: ViewEntry): {xattrs?: Xattrs} => {
    const all = entryXattrs(e, view.upperForm);
    if (!all) return {};
    const kept = Object.entries(all).filter(([n]) => root || n.startsWith('user.'));
    return kept.length > 0 ? {xattrs: Object.fromEntries(kept)} : {};
  };
  // chown before chmod: chown clears the setuid and setgid bits; and before the xattrs,
  // since it clears file capabilities (security.capability) too.
  const setMeta = (host: string, e: ViewEntry) => {
    if (root) fs.lchownSync(host, e.uid, e.gid);
    fs.chmodSync(host, e.mode);
    const {xattrs} = xattrsOf(e);
    if (xattrs) writeXattrsSync(host, xattrs);
    fs.utimesSync(host, e.mtime, e.mtime);
  };

  try {
    for (const child of await view.readdir(from)) await visit(childPath(from, child.name), child, path.join(dir, child.name));
    await writer.finish();
  } catch (err) {
    await writer.stop();
    throw err;
  }
  for (const {first, host} of upperLinks) fs.linkSync(first, host);
  counts.hardlinks += upperLinks.length;
  // A lower hardlink is one file with its first path when that path, in this checkout,
  // still holds the same blob (a higher layer may have replaced it), as in a metadata
  // image (metaImage.ts); otherwise it is a file of its own.
  const copies = new HostWriter(store.dir, {owners: root}, progress);
  for (const {host, e} of lowerLinks) {
    const target = await linkTarget(view, from, dir, e);
    if (target) {
      fs.linkSync(target, host);
      counts.hardlinks++;
    } else {
      await copies.write(fileJob(store, e, host, xattrsOf(e)));
      counts.files++;
      counts.bytes += e.size;
    }
  }
  await copies.finish();
  for (let i = dirs.length - 1; i >= 0; i--) setMeta(dirs[i]!.host, dirs[i]!.e);
  setMeta(dir, top);
  return {...counts, skipped};
}

/** A file's job: an upper file is copied from its host path, a lower one from its blob (inline bytes or object file). */
function fileJob(store: Store, e: ViewEntry, host: string, xattrs: {xattrs?: Xattrs}): HostEntryJob {
  const meta = {kind: 'file' as const, dest: host, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, ...xattrs};
  if (e.hostPath) return {...meta, hostFile: e.hostPath, size: e.size};
  const v = store.blobValueSync(e.blob!);
  return v.file ? {...meta, blob: e.blob!, object: v.size, size: v.size} : {...meta, blob: e.blob!, inline: v.data, size: v.size};
}

/**
 * The host path a lower hardlink joins: its first path's, when that path is inside the
 * checkout, is reached without symlinks, and shows a lower file (not itself a link) with
 * the same blob. Undefined otherwise.
 */
async function linkTarget(view: UnionView, from: ViewPath, dir: string, e: ViewEntry): Promise<string | undefined> {
  const target = e.linkOf! as ViewPath;
  const rel = path.posix.relative(from, target);
  if (rel === '' || rel.startsWith('..') || path.posix.isAbsolute(rel)) return undefined;
  try {
    const parent = path.posix.dirname(target) as ViewPath;
    if ((await view.realpath(parent)) !== parent) return undefined;
    const t = await view.lstat(target);
    return t.kind === 'file' && t.source === 'lower' && !t.linkOf && t.blob === e.blob ? path.join(dir, rel) : undefined;
  } catch (err) {
    if (err instanceof UnionError && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return undefined;
    throw err;
  }
}
