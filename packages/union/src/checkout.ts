import * as path from 'node:path';
import {randomBytes} from 'node:crypto';
// Names are bytes (a name that is not UTF-8 is written as it is): hostFs converts at the fs calls.
import {type Store, type Xattrs, OWNER_XATTR, hostFs as fs, makeDirs, readXattrsSync, writeXattrsSync} from '@strata/store';
import {UnionError} from './errors.js';
import type {UnionView} from './UnionView.js';
import type {ViewEntry} from './ViewEntry.js';
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
  const work = `${dir}.strata-${randomBytes(6).toString('hex')}`;
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
  const upperLinks = new Map<number, string>();
  const lowerLinks: [ViewPath, string, ViewEntry][] = [];
  const byPath = new Map<string, {host: string; blob: string | undefined}>();
  // As root every xattr is restored; otherwise only user.* (trusted.* and security.* need
  // privilege). An upper entry's are read from its host file, less overlayfs's own and
  // strata's owner record (the owner is the entry's uid:gid already).
  const setXattrs = (host: string, e: ViewEntry) => {
    const upper = e.source === 'upper' && e.hostPath !== undefined;
    const all: Xattrs | undefined = upper ? readXattrsSync(e.hostPath!) : e.xattrs;
    if (!all) return;
    const kept = Object.entries(all).filter(([n]) => (root || n.startsWith('user.')) && !(upper && (/^(trusted|user)\.overlay\./.test(n) || n === OWNER_XATTR)));
    if (kept.length > 0) writeXattrsSync(host, Object.fromEntries(kept));
  };

  const write = async (p: ViewPath, e: ViewEntry, host: string) => {
    switch (e.kind) {
      case 'dir':
        fs.mkdirSync(host);
        counts.dirs++;
        for (const child of await view.readdir(p)) await write(childPath(p, child.name), child, path.join(host, child.name));
        break;
      case 'file': {
        const first = e.ino !== undefined && (e.nlink ?? 1) > 1 ? upperLinks.get(e.ino) : undefined;
        const sibling = e.linkOf ? byPath.get(e.linkOf) : undefined;
        const link = first ?? (sibling && sibling.blob === e.blob ? sibling.host : undefined);
        if (link) {
          fs.linkSync(link, host);
          counts.hardlinks++;
          return;
        }
        if (e.hostPath) fs.copyFileSync(e.hostPath, host, fs.constants.COPYFILE_FICLONE);
        else await store.copyBlob(e.blob!, host); // checked against its digest: damage is never checked out
        if (e.ino !== undefined && (e.nlink ?? 1) > 1) upperLinks.set(e.ino, host);
        if (e.linkOf) lowerLinks.push([p, host, e]);
        byPath.set(p, {host, blob: e.blob});
        counts.files++;
        counts.bytes += e.size;
        onProgress?.(counts.files, counts.bytes);
        break;
      }
      case 'symlink':
        fs.symlinkSync(e.target!, host);
        if (root) fs.lchownSync(host, e.uid, e.gid);
        setXattrs(host, e);
        fs.lutimesSync(host, e.mtime, e.mtime);
        counts.symlinks++;
        return;
      default: {
        if (!fs.mknodSync(host, e.kind as 'fifo' | 'char' | 'block', e.devmajor ?? 0, e.devminor ?? 0)) {
          skipped.push(p);
          return;
        }
      }
    }
    // chown before chmod: chown clears the setuid and setgid bits; and before the xattrs,
    // since it clears file capabilities (security.capability) too.
    if (root) fs.lchownSync(host, e.uid, e.gid);
    fs.chmodSync(host, e.mode);
    setXattrs(host, e);
    fs.utimesSync(host, e.mtime, e.mtime);
  };

  for (const child of await view.readdir(from)) await write(childPath(from, child.name), child, path.join(dir, child.name));
  // Lower hardlinks whose first path came later in the walk: link them now, if that path
  // still holds the same file, and give the parent back its mtime.
  for (const [p, host, e] of lowerLinks) {
    const target = byPath.get(e.linkOf!);
    if (!target || target.host === host || target.blob !== e.blob) continue;
    fs.rmSync(host);
    fs.linkSync(target.host, host);
    counts.hardlinks++;
    counts.files--;
    counts.bytes -= e.size;
    const parent = await view.lstat(path.posix.dirname(p) as ViewPath);
    fs.utimesSync(path.dirname(host), parent.mtime, parent.mtime);
  }
  if (root) fs.lchownSync(dir, top.uid, top.gid);
  fs.chmodSync(dir, top.mode);
  setXattrs(dir, top);
  fs.utimesSync(dir, top.mtime, top.mtime);
  return {...counts, skipped};
}
