import {createWriteStream} from 'node:fs';
import * as path from 'node:path';
import {pipeline} from 'node:stream/promises';
import {type Store, hostFs as fs, layerXattrs} from '@strata/store';
import {checkout} from './checkout.js';
import {UnionError} from './errors.js';
import type {UnionView} from './UnionView.js';
import {type ViewPath, ROOT, baseName, childPath} from './viewPath.js';

/** What a copy wrote. */
export interface CopyCounts {
  readonly files: number;
  readonly dirs: number;
  readonly symlinks: number;
  readonly hardlinks: number;
  readonly bytes: number;
}

export interface CopyOptions {
  /** Called after each file with the files and bytes copied so far. */
  readonly onProgress?: (files: number, bytes: number) => void;
}

/**
 * Copies a host file or tree into a view as `cp -a` does. When `dest` is a directory
 * (through symlinks), the source goes into it under its own name; otherwise the source is
 * created at `dest`, whose parent must exist. A `dest` ending in "/" must be a directory,
 * or be missing while the source is one (it is then created). An existing file is
 * replaced; a directory is never replaced by a non-directory (EISDIR) nor a non-directory
 * by a directory (ENOTDIR). Owners, modes, times, xattrs, symlinks (as they are) and
 * hardlinks within the tree are kept (owners only when strata runs as root, as cp -a can);
 * directory metadata is set last, after their entries.
 * As with `cp -a`, an xattr the writable layer may not hold for this user (a `trusted.` or
 * `security.` one without root) is left out; the layer's own bookkeeping names, and on a
 * SELinux host `security.selinux` (the host's label), are never copied, as import has it.
 *
 * Everything that could refuse the copy (the source, the destination, every name that
 * would meet an entry of the other kind) is checked before the view changes.
 * Throws UnionErrors: ENOENT, ENOTDIR, EISDIR, EINVAL (a host entry that is not a file,
 * directory or symlink), and those of the view.
 */
export async function copyIntoView(view: UnionView, host: string, dest: ViewPath, options: CopyOptions = {}): Promise<CopyCounts> {
  const top = hostLstat(host);
  const target = await intoViewTarget(view, host, top, dest);
  await checkConflicts(view, host, top, target);

  const counts = {files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0};
  const links = new Map<string, ViewPath>(); // dev:ino of a host file with several links -> its first view path
  const dirTimes: [ViewPath, fs.Stats, string][] = [];
  const put = async (h: string, st: fs.Stats, p: ViewPath): Promise<void> => {
    const existing = await view.lstat(p).catch(() => undefined);
    if (st.isDirectory()) {
      if (!existing) await view.mkdir(p, {mode: 0o700});
      counts.dirs++;
      for (const name of fs.readdirSync(h).sort()) await put(path.join(h, name), fs.lstatSync(path.join(h, name)), childPath(p, name));
      dirTimes.push([p, st, h]);
      return;
    }
    // A symlink or a new hardlink takes the name's place; a plain file is written into it.
    if (existing && (existing.kind !== 'file' || st.isSymbolicLink() || st.nlink > 1)) await view.remove(p);
    if (st.isSymbolicLink()) {
      await view.symlink(fs.readlinkSync(h), p);
      await keepOwnerAndXattrs(view, h, st, p);
      counts.symlinks++;
      return;
    }
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 ? links.get(key) : undefined;
    if (first) {
      await view.link(first, p);
      counts.hardlinks++;
      return;
    }
    await view.writeFile(p, {hostFile: h}, {mode: st.mode & 0o7777});
    await setMeta(view, h, st, p);
    if (st.nlink > 1) links.set(key, p);
    counts.files++;
    counts.bytes += st.size;
    options.onProgress?.(counts.files, counts.bytes);
  };
  await put(host, top, target);
  // Modes and times of directories last: adding entries changes a directory's mtime.
  for (const [p, st, h] of dirTimes) await setMeta(view, h, st, p);
  return counts;
}

/** A copied file's or directory's metadata from its host source: owner, mode, xattrs, time. */
async function setMeta(view: UnionView, host: string, st: fs.Stats, p: ViewPath): Promise<void> {
  await keepOwnerAndXattrs(view, host, st, p, async () => view.chmod(p, st.mode & 0o7777));
  await view.utimes(p, Math.floor(st.mtimeMs / 1000));
}

/**
 * The owner first (chown clears the setuid and setgid bits, chown(2)), then `between`
 * (the mode), then the xattrs (chown also clears `security.capability`).
 */
async function keepOwnerAndXattrs(view: UnionView, host: string, st: fs.Stats, p: ViewPath, between?: () => Promise<void>): Promise<void> {
  // As cp -a: only root gives a copy its source's owner; anyone else's copy is theirs (a new
  // entry) or keeps the owner it had (a file written over).
  if (process.getuid?.() === 0) await view.lchown(p, st.uid, st.gid);
  await between?.();
  const xattrs = layerXattrs(host, view.upperForm);
  for (const [name, value] of Object.entries(xattrs ?? {})) {
    try {
      await view.setXattrs(p, {[name]: value});
    } catch (err) {
      if (!mayNotHold(err)) throw err;
    }
  }
}

/** An xattr write refused for this user or this filesystem (cp -a leaves such ones out). */
function mayNotHold(err: unknown): boolean {
  const e = err as {code?: string; message?: string};
  return e.code === 'EPERM' || e.code === 'ENOTSUP' || e.code === 'EOPNOTSUPP' || /not permitted|not supported/i.test(e.message ?? '');
}

/**
 * Copies a view's file or directory out to the host as `cp -a` does (the same rules for
 * the destination as `copyIntoView`; a directory's destination must not exist yet). A
 * directory goes through `checkout`; a file through a temporary name and a rename, so a
 * reader never sees half of it. Throws UnionErrors: ENOENT, ENOTDIR, EISDIR, EEXIST,
 * EINVAL (a view entry that is not a file or directory).
 */
export async function copyOutOfView(store: Store, view: UnionView, from: ViewPath, host: string, options: CopyOptions = {}): Promise<CopyCounts> {
  const entry = await view.stat(from);
  const canonical = await view.realpath(from);
  const slash = host.endsWith('/');
  const there = hostStat(host);
  // cp(1): a destination ending in "/" is a directory, or is made as one from a directory.
  if (slash && !there?.isDirectory() && (entry.kind !== 'dir' || fs.lstatSync(path.resolve(host), {throwIfNoEntry: false})))
    throw new UnionError('ENOTDIR', `${host} is not a directory on the host`, {path: host});
  const name = canonical === ROOT ? 'root' : baseName(canonical);
  const target = there?.isDirectory() ? path.join(host, name) : path.resolve(host);
  if (!hostStat(path.dirname(target))?.isDirectory())
    throw new UnionError('ENOENT', `${target}: the host directory ${path.dirname(target)} does not exist`, {path: target});
  if (entry.kind === 'dir') {
    if (fs.existsSync(target)) throw new UnionError('EEXIST', `${target} already exists on the host`, {path: target});
    const r = await checkout(store, view, target, {from: canonical, ...(options.onProgress ? {onProgress: options.onProgress} : {})});
    return {files: r.files, dirs: r.dirs + 1, symlinks: r.symlinks, hardlinks: r.hardlinks, bytes: r.bytes};
  }
  if (entry.kind !== 'file') throw new UnionError('EINVAL', `${from} is a ${entry.kind}; cp copies files and directories out`, {path: from});
  if (hostStat(target)?.isDirectory()) throw new UnionError('EISDIR', `${target} is a directory on the host`, {path: target});
  const tmp = `${target}.strata-cp-${process.pid}`;
  try {
    await pipeline(await view.open(canonical), createWriteStream('', {fd: fs.openSync(tmp, 'w', 0o600)}));
    fs.chmodSync(tmp, entry.mode);
    fs.utimesSync(tmp, entry.mtime, entry.mtime);
    fs.renameSync(tmp, target);
  } finally {
    fs.rmSync(tmp, {force: true});
  }
  options.onProgress?.(1, entry.size);
  return {files: 1, dirs: 0, symlinks: 0, hardlinks: 0, bytes: entry.size};
}

/** Where in the view a host source lands (cp(1)'s rules for the destination). */
async function intoViewTarget(view: UnionView, host: string, top: fs.Stats, dest: ViewPath): Promise<ViewPath> {
  const there = await view.stat(dest).catch(() => undefined);
  if (there?.kind === 'dir') {
    const name = path.basename(host);
    return name === '.' ? dest : childPath(dest, name); // "src/.": its entries, into dest
  }
  // cp(1): "cannot stat 'f/': Not a directory", "cannot create regular file 'new/': Not a
  // directory"; only a directory source may make a missing "new/".
  if (dest.endsWith('/') && (!top.isDirectory() || (await view.lstat(dest.slice(0, -1) as ViewPath).catch(() => undefined))))
    throw new UnionError('ENOTDIR', `ENOTDIR: not a directory, stat '${dest}'`, {syscall: 'stat', path: dest});
  const parent = dest.slice(0, dest.replace(/\/$/, '').lastIndexOf('/')) || ROOT;
  if ((await view.stat(parent as ViewPath).catch(() => undefined))?.kind !== 'dir')
    throw new UnionError('ENOENT', `the directory ${parent} does not exist (copying to ${dest})`, {path: dest});
  return dest;
}

/**
 * Refuses, before anything is written, a copy that would put a directory where the view
 * has a non-directory or a non-directory where it has a directory (cp(1): "cannot
 * overwrite directory … with non-directory"). Reads only where the view already has the
 * directories the source has.
 */
async function checkConflicts(view: UnionView, host: string, st: fs.Stats, p: ViewPath): Promise<void> {
  if (!st.isDirectory() && !st.isFile() && !st.isSymbolicLink())
    throw new UnionError('EINVAL', `${host}: only files, directories and symlinks can be copied in`, {path: host});
  const existing = await view.lstat(p).catch(() => undefined);
  if (st.isDirectory()) {
    if (existing && existing.kind !== 'dir')
      throw new UnionError('ENOTDIR', `cannot overwrite non-directory ${p} with directory ${host}`, {syscall: 'mkdir', path: p});
    for (const name of fs.readdirSync(host).sort()) {
      const child = path.join(host, name);
      const childSt = fs.lstatSync(child);
      if (existing || !childSt.isDirectory()) await checkConflicts(view, child, childSt, childPath(p, name));
    }
    return;
  }
  if (existing?.kind === 'dir')
    throw new UnionError('EISDIR', `cannot overwrite directory ${p} with non-directory ${host}`, {syscall: 'open', path: p});
}

/** lstat of a host source; a trailing "/" asks for a directory (and follows a symlink), as the kernel has it. */
function hostLstat(host: string): fs.Stats {
  try {
    return fs.lstatSync(host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UnionError('ENOENT', `${host}: no such file or directory on the host`, {path: host}, {cause: err});
    if (code === 'ENOTDIR') throw new UnionError('ENOTDIR', `${host}: not a directory on the host`, {path: host}, {cause: err});
    throw err;
  }
}

/** stat of a host path (following symlinks), or undefined when nothing is there. */
function hostStat(host: string): fs.Stats | undefined {
  try {
    return fs.statSync(host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}
