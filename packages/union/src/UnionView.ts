import * as path from 'node:path';
import {Readable} from 'node:stream';
// Host paths of the upper hold names as strata keeps them (bytes that are not UTF-8 escaped): hostFs converts.
import {type Digest, type Store, type Tree, type UpperForm, compareNames, findEntry, hostFs as fs, OWNER_XATTR, setRecordedOwner, WHITEOUT_PREFIX, writeXattrsSync} from '@strata/store';
import {UnionError, fsError} from './errors.js';
import type {MountWriter} from './mount/MountWriter.js';
import {type ViewEntry, entryFromStats, entryFromTree, rootEntry} from './ViewEntry.js';
import {type ViewPath, ROOT, childPath, joinParts, parseViewPath, splitViewPath} from './viewPath.js';

/** Where the walk stands in each layer at one directory of the view. */
interface DirState {
  /** The directory's host path in the upper, if the upper has it. */
  readonly upper: string | undefined;
  /** The directory's lower tree, if the lower shows through here. */
  readonly lower: Tree | undefined;
}

/** A path after resolution: its canonical parts, its entry (if any), and the layers at its parent. */
interface Located {
  readonly parts: string[];
  readonly entry: ViewEntry | undefined;
  readonly parent: DirState;
  /** What the lower has at this name, visible or whited out: decides whiteouts and opaque dirs. */
  readonly lowerHere: ViewEntry | undefined;
  /** Set when the entry is a directory: the layers inside it. */
  readonly inside: DirState | undefined;
  /**
   * What the path's last part was: a name, ".", "..", or nothing (the root). Only a name
   * can be created, removed or renamed (as the kernel's LAST_NORM).
   */
  readonly last: 'name' | 'dot' | 'dotdot' | 'root';
  /** The path ended in "/" after its last name: that name must be a directory. */
  readonly slash: boolean;
}

/** How `resolve` treats a symlink in the last part: see there. */
type Final = 'follow' | 'lstat' | 'name';

const MAX_SYMLINKS = 40; // Linux's limit, as path_resolution(7) gives it

export interface WriteOptions {
  /** Permission bits of a new file (existing files keep theirs). Default 0o644. */
  readonly mode?: number;
}

/**
 * A union view: a container's writable layer (the *upper*, a host directory) over the
 * merged tree of its image's read-only layers (the *lower*, flattened once per image by
 * `flattenLayers`, so lookups cost the same over 1 layer or 1000).
 *
 * Reading looks in the upper first; the lower answers unless the upper has a whiteout
 * for the name or an opaque parent, in the kernel overlayfs form (`store.upper`,
 * `UpperForm`), so the same directory can be the upperdir of a kernel mount. Writing copies a
 * lower entry up first (content and metadata, parents metadata-only); deleting a lower
 * entry records a whiteout; a directory created where a lower one was deleted is opaque.
 * Renaming a lower directory copies its subtree up and makes it opaque (no EXDEV).
 *
 * Paths resolve as the kernel resolves them (path_resolution(7)), one part at a time:
 * a ".." after a symlink steps back from the symlink's target. Symlinks are resolved
 * inside the view: absolute targets start at the view's root and ".." stops there (as
 * in a chroot), so nothing outside the view is ever reached; the upper's host paths
 * are only ever used after resolution, so a symlink in the upper is never followed on
 * the host. Errors are Node-style UnionErrors (ENOENT, ENOTDIR, EISDIR, EEXIST…).
 * A view without an upper (an image's) is read-only: writes throw EROFS.
 */
export class UnionView {
  private constructor(
    private readonly store: Store,
    /** The merged lower tree. */
    readonly lowerRoot: Digest,
    private readonly lowerTree: Tree,
    /** The upper's host directory; undefined for a read-only view. */
    readonly upperRoot: string | undefined,
    /** Set while the container is mounted: writes go through the mount, never to the upper. */
    private readonly through: MountWriter | undefined,
  ) {}

  /**
   * A view of `lowerRoot` (a merged tree) with `upperRoot` as its writable layer, if given;
   * with `through`, the container is mounted and its writes go through the mount.
   */
  static async open(store: Store, lowerRoot: Digest, upperRoot?: string, through?: MountWriter): Promise<UnionView> {
    return new UnionView(store, lowerRoot, await store.getTree(lowerRoot), upperRoot, through);
  }

  /** Lets go of the mount (the process that writes through it keeps it busy). */
  async close(): Promise<void> {
    await this.through?.close();
  }

  /** Whether writes go through a kernel mount of the container. */
  get mounted(): boolean {
    return this.through !== undefined;
  }

  /** How the upper is kept on disk (the store's form). */
  get upperForm(): UpperForm {
    return this.store.upper;
  }

  // ---- reading -----------------------------------------------------------------------

  /** The entry at `p`, not following a final symlink. */
  async lstat(p: ViewPath): Promise<ViewEntry> {
    return this.existing(await this.resolve(p, 'lstat', 'lstat'), 'lstat', p);
  }

  /** The entry at `p`, following symlinks inside the view. */
  async stat(p: ViewPath): Promise<ViewEntry> {
    return this.existing(await this.resolve(p, 'follow', 'stat'), 'stat', p);
  }

  /** The canonical path of `p` with every symlink resolved inside the view. */
  async realpath(p: ViewPath): Promise<ViewPath> {
    const loc = await this.resolve(p, 'follow', 'realpath');
    this.existing(loc, 'realpath', p);
    return joinParts(loc.parts);
  }

  /** Whether `p` exists (not following a final symlink). */
  async exists(p: ViewPath): Promise<boolean> {
    try {
      return (await this.resolve(p, 'lstat', 'lstat')).entry !== undefined;
    } catch (err) {
      if (err instanceof UnionError && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return false;
      throw err;
    }
  }

  /**
   * The merged listing of a directory, sorted by name: the upper's entries, then the
   * lower's that the upper neither shadows nor whites out, unless the upper is opaque.
   */
  async readdir(p: ViewPath): Promise<ViewEntry[]> {
    const loc = await this.resolve(p, 'follow', 'scandir');
    const entry = this.existing(loc, 'scandir', p);
    if (entry.kind !== 'dir') throw fsError('ENOTDIR', 'scandir', p);
    return this.list(loc.inside!);
  }

  /** A file's bytes (following symlinks). */
  async readFile(p: ViewPath): Promise<Buffer> {
    const entry = await this.fileEntry(p, 'open');
    return entry.hostPath ? fs.readFileSync(entry.hostPath) : this.store.readBlob(entry.blob!);
  }

  /** A file's bytes as a stream (following symlinks); large lower blobs are not read into memory. */
  async open(p: ViewPath): Promise<Readable> {
    const entry = await this.fileEntry(p, 'open');
    return entry.hostPath ? fs.createReadStream(entry.hostPath) : this.store.openBlob(entry.blob!);
  }

  async readlink(p: ViewPath): Promise<string> {
    const entry = await this.lstat(p);
    if (entry.kind !== 'symlink') throw fsError('EINVAL', 'readlink', p);
    return entry.target!;
  }

  // ---- writing -----------------------------------------------------------------------

  /**
   * Creates or replaces a file's content (following a final symlink, as open(2) does).
   * `data` is bytes, or `{hostFile}` to copy a host file. A lower file is copied up
   * (keeping mode and owner); a new file gets `mode` (default 0o644).
   */
  async writeFile(p: ViewPath, data: Buffer | {readonly hostFile: string}, options: WriteOptions = {}): Promise<void> {
    const upper = this.writable('open', p);
    if (this.through) return this.through.writeFile(this.creatable(p, 'open'), data, options.mode ?? 0o644);
    // open(2) with O_CREAT refuses a path ending in "/" (or ".", ".."), whatever is there,
    // once the directories before it were found.
    if (endsAtDirectory(p)) {
      await this.resolve(p, 'name', 'open');
      throw fsError('EISDIR', 'open', p);
    }
    const loc = await this.resolve(p, 'follow', 'open');
    const entry = loc.entry;
    if (entry && entry.kind === 'dir') throw fsError('EISDIR', 'open', p);
    if (entry && entry.kind !== 'file') throw fsError('EINVAL', 'open', p);
    const write = (host: string) => {
      if ('hostFile' in data) fs.copyFileSync(data.hostFile, host);
      else fs.writeFileSync(host, data);
    };
    if (entry?.source === 'upper') {
      write(entry.hostPath!);
      return;
    }
    const name = this.creatableName(loc, 'open', p);
    const parent = await this.ensureUpperDir(loc.parts.slice(0, -1), upper);
    const host = path.join(parent, name);
    this.clearWhiteout(host);
    if (entry) keepTimes(parent, () => write(host));
    else write(host);
    if (entry) {
      applyMeta(host, entry);
      fs.utimesSync(host, new Date(), new Date());
    } else {
      fs.chmodSync(host, options.mode ?? 0o644);
    }
  }

  /** Creates a directory; with `parents`, creates missing parents and accepts an existing directory. */
  async mkdir(p: ViewPath, options: {mode?: number; parents?: boolean} = {}): Promise<void> {
    const upper = this.writable('mkdir', p);
    if (this.through && !options.parents) return this.through.mkdir(this.creatable(p, 'mkdir'), options.mode ?? 0o755);
    if (options.parents) {
      const parts = splitViewPath(p);
      for (let i = 1; i <= parts.length; i++) {
        const sub = joinParts(parts.slice(0, i));
        const loc = await this.resolve(sub, 'follow', 'mkdir');
        if (loc.entry?.kind === 'dir') continue;
        if (loc.entry) throw fsError('EEXIST', 'mkdir', sub);
        if (this.through) await this.through.mkdir(this.creatable(sub, 'mkdir'), options.mode ?? 0o755);
        else await this.makeDir(loc, upper, options.mode ?? 0o755, sub);
      }
      return;
    }
    const loc = await this.resolve(p, 'name', 'mkdir');
    if (loc.entry) throw fsError('EEXIST', 'mkdir', p);
    await this.makeDir(loc, upper, options.mode ?? 0o755, p);
  }

  /** Creates a symlink at `p` pointing to `target` (stored as given; resolved inside the view when followed). */
  async symlink(target: string, p: ViewPath): Promise<void> {
    const upper = this.writable('symlink', p);
    if (this.through) return this.through.symlink(target, this.creatable(p, 'symlink'));
    const loc = await this.resolve(p, 'name', 'symlink');
    if (loc.entry) throw fsError('EEXIST', 'symlink', p);
    if (loc.slash) throw fsError('ENOENT', 'symlink', p); // a new name with "/" after it asks for a directory
    if (target === '' || target.includes('\0')) throw fsError('EINVAL', 'symlink', p);
    const host = path.join(await this.ensureUpperDir(loc.parts.slice(0, -1), upper), this.creatableName(loc, 'symlink', p));
    this.clearWhiteout(host);
    fs.symlinkSync(target, host);
  }

  /** Creates a hardlink `p` to the file `existing` (copying it up first if it is in the lower). */
  async link(existing: ViewPath, p: ViewPath): Promise<void> {
    const upper = this.writable('link', p);
    if (this.through) return this.through.link(existing, this.creatable(p, 'link'));
    const src = await this.resolve(existing, 'lstat', 'link');
    const entry = this.existing(src, 'link', existing);
    // link(2) looks up the new name before it checks the old one's type (fs/namei.c do_linkat).
    const dst = await this.resolve(p, 'name', 'link');
    if (dst.entry) throw fsError('EEXIST', 'link', p);
    if (dst.slash) throw fsError('ENOENT', 'link', p);
    if (entry.kind === 'dir') throw fsError('EPERM', 'link', existing);
    const name = this.creatableName(dst, 'link', p);
    const srcHost = await this.copyUp(src, upper);
    const host = path.join(await this.ensureUpperDir(dst.parts.slice(0, -1), upper), name);
    this.clearWhiteout(host);
    fs.linkSync(srcHost, host);
  }

  /**
   * Removes `p` (not following a final symlink). A directory must be empty unless
   * `recursive`. What the lower has at `p` is hidden by a whiteout.
   */
  async remove(p: ViewPath, options: {recursive?: boolean} = {}): Promise<void> {
    const upper = this.writable('rm', p);
    if (this.through) return this.through.remove(p, options.recursive === true);
    const loc = await this.resolve(p, 'name', 'rm');
    const entry = this.existing(loc, 'rm', p);
    // rmdir(2) of "/", "d/." and "d/.." (fs/namei.c do_rmdir).
    if (loc.last === 'root') throw fsError('EBUSY', 'rmdir', p);
    if (loc.last === 'dot') throw fsError('EINVAL', 'rmdir', p);
    if (loc.last === 'dotdot') throw fsError('ENOTEMPTY', 'rmdir', p);
    if (loc.slash && entry.kind !== 'dir') {
      // "x/" must be a directory: a symlink is looked at through, then refused as rmdir(2) does.
      if (entry.kind === 'symlink') this.existing(await this.resolve(p, 'lstat', 'rm'), 'rm', p);
      throw fsError('ENOTDIR', entry.kind === 'symlink' ? 'rmdir' : 'rm', p);
    }
    if (entry.kind === 'dir' && !options.recursive && (await this.list(loc.inside!)).length > 0) throw fsError('ENOTEMPTY', 'rmdir', p);
    await this.erase(loc, upper);
  }

  /**
   * Renames `from` to `to` (neither final symlink followed), replacing a file or an
   * empty directory at `to` as rename(2) does. Lower entries are copied up first; a
   * directory is copied up whole and made opaque, so it keeps exactly what it showed.
   */
  async rename(from: ViewPath, to: ViewPath): Promise<void> {
    const upper = this.writable('rename', from);
    if (this.through) return this.through.rename(from, this.creatable(to, 'rename'));
    // rename(2)'s order (fs/namei.c do_renameat2): both parents, then the old name, then
    // ancestry, then "same file" (a no-op), then the types of the two names.
    const src = await this.resolve(from, 'name', 'rename');
    const dst = await this.resolve(to, 'name', 'rename');
    if (src.last !== 'name') throw fsError('EBUSY', 'rename', from);
    if (dst.last !== 'name') throw fsError('EBUSY', 'rename', to);
    const entry = this.existing(src, 'rename', from);
    if (entry.kind !== 'dir' && (src.slash || dst.slash)) throw fsError('ENOTDIR', 'rename', src.slash ? from : to);
    const srcKey = src.parts.join('/'), dstKey = dst.parts.join('/');
    if (srcKey === dstKey) return;
    if (dstKey.startsWith(`${srcKey}/`)) throw fsError('EINVAL', 'rename', to);
    if (srcKey.startsWith(`${dstKey}/`)) throw fsError('ENOTEMPTY', 'rename', to);
    const name = this.creatableName(dst, 'rename', to);
    // Two links of one upper file: rename(2) leaves both. Lower links are separate files
    // in a view (a copy-up breaks them), as overlayfs without its inode index shows them.
    if (entry.source === 'upper' && dst.entry?.source === 'upper' && entry.ino === dst.entry.ino && entry.kind !== 'dir') return;
    if (dst.entry) {
      if (entry.kind === 'dir' && dst.entry.kind !== 'dir') throw fsError('ENOTDIR', 'rename', to);
      if (entry.kind !== 'dir' && dst.entry.kind === 'dir') throw fsError('EISDIR', 'rename', to);
      if (dst.entry.kind === 'dir' && (await this.list(dst.inside!)).length > 0) throw fsError('ENOTEMPTY', 'rename', to);
    }
    const srcHost = entry.kind === 'dir' ? await this.copyUpTree(src, upper) : await this.copyUp(src, upper);
    const dstParent = await this.ensureUpperDir(dst.parts.slice(0, -1), upper);
    const host = path.join(dstParent, name);
    this.clearWhiteout(host);
    if (dst.entry?.source === 'upper') fs.rmSync(host, {recursive: true, force: true});
    fs.renameSync(srcHost, host);
    if (src.lowerHere) this.writeWhiteout(path.dirname(srcHost), src.parts[src.parts.length - 1]!);
  }

  /** Sets permission bits (following symlinks); copies the entry up first. */
  async chmod(p: ViewPath, mode: number): Promise<void> {
    const upper = this.writable('chmod', p);
    if (this.through) return this.through.chmod(p, mode & 0o7777);
    fs.chmodSync(await this.copyUp(await this.existingLoc(p, 'follow', 'chmod'), upper), mode & 0o7777);
  }

  /**
   * Sets owner and group (following symlinks); copies the entry up first. Without the
   * right to chown, the owner is recorded beside the file (`setRecordedOwner`).
   */
  async chown(p: ViewPath, uid: number, gid: number): Promise<void> {
    const upper = this.writable('chown', p);
    if (this.through) return this.through.chown(p, uid, gid);
    const host = await this.copyUp(await this.existingLoc(p, 'follow', 'chown'), upper);
    setRecordedOwner(host, fs.lstatSync(host), uid, gid);
  }

  /**
   * Sets the owner and group of `p` itself (a final symlink is not followed), as lchown(2);
   * copies the entry up first. Without the right to chown, a file's or directory's owner
   * is recorded beside it (`setRecordedOwner`) and a symlink keeps the owner it has.
   */
  async lchown(p: ViewPath, uid: number, gid: number): Promise<void> {
    const upper = this.writable('lchown', p);
    if (this.through) return this.through.lchown(p, uid, gid);
    const host = await this.copyUp(await this.existingLoc(p, 'name', 'lchown'), upper);
    setRecordedOwner(host, fs.lstatSync(host), uid, gid);
  }

  /**
   * Sets extended attributes of `p` itself (not following a final symlink), as lsetxattr(2)
   * for each name; copies the entry up first. The writable layer's own names (overlayfs's
   * `trusted.overlay.*` / `user.overlay.*`, strata's owner record) are refused: EPERM.
   */
  async setXattrs(p: ViewPath, xattrs: Readonly<Record<string, Buffer>>): Promise<void> {
    const upper = this.writable('setxattr', p);
    for (const name of Object.keys(xattrs))
      if (this.upperForm.isOverlayXattr(name) || name === OWNER_XATTR)
        throw new UnionError('EPERM', `${p}: the xattr ${name} belongs to the writable layer's format, not to its entries`, {syscall: 'setxattr', path: p});
    if (this.through) {
      for (const [name, value] of Object.entries(xattrs)) await this.through.setXattr(p, name, value);
      return;
    }
    const host = await this.copyUp(await this.existingLoc(p, 'name', 'setxattr'), upper);
    writeXattrsSync(host, xattrs);
  }

  /** Sets the modification time, in seconds (following symlinks); copies the entry up first. */
  async utimes(p: ViewPath, mtime: number): Promise<void> {
    const upper = this.writable('utime', p);
    if (this.through) return this.through.utimes(p, mtime);
    const host = await this.copyUp(await this.existingLoc(p, 'follow', 'utime'), upper);
    fs.utimesSync(host, mtime, mtime);
  }

  // ---- resolution ---------------------------------------------------------------------

  /**
   * Walks `p` from the root one part at a time, as path_resolution(7) does: a symlink met
   * on the way is replaced by its target and the walk goes on from there, so a ".." after
   * it steps back from the target; ".." stops at the root. The last name is followed when
   * it is a symlink and `final` is 'follow', or 'lstat' with a trailing "/"; 'name' (for
   * creating, removing, renaming) never follows it. Outside 'name', a trailing "/" on a
   * non-directory is ENOTDIR. Throws ENOENT for a missing middle part, ENOTDIR for a
   * middle part that is not a directory, ELOOP past 40 links.
   */
  private async resolve(p: ViewPath, final: Final, syscall: string): Promise<Located> {
    let todo = splitViewPath(p);
    let done: string[] = [];
    const root = this.rootState();
    let states: DirState[] = [root];
    let links = 0;
    for (let name = todo.shift(); name !== undefined; name = todo.shift()) {
      const slash = todo.length > 0 && todo.every(n => n === '');
      const isLast = todo.length === 0 || slash;
      if (name === '') continue;
      if (name === '.' || name === '..') {
        if (name === '..' && done.length > 0) { done.pop(); states.pop(); }
        if (isLast) return {...(await this.directoryAt(done, syscall)), last: name === '.' ? 'dot' : 'dotdot'};
        continue;
      }
      const state = states[states.length - 1]!;
      const step = await this.step(state, name);
      if (!step.entry) {
        if (isLast) return {parts: [...done, name], entry: undefined, parent: state, lowerHere: step.lowerHere, inside: undefined, last: 'name', slash};
        throw fsError('ENOENT', syscall, p);
      }
      if (step.entry.kind === 'symlink' && (!isLast || final === 'follow' || (slash && final === 'lstat'))) {
        if (++links > MAX_SYMLINKS) throw fsError('ELOOP', syscall, p);
        const target = step.entry.target!;
        if (target.startsWith('/')) { done = []; states = [root]; }
        todo = [...target.split('/'), ...todo];
        continue;
      }
      if (isLast) {
        if (slash && final !== 'name' && step.entry.kind !== 'dir') throw fsError('ENOTDIR', syscall, p);
        return {parts: [...done, name], entry: step.entry, parent: state, lowerHere: step.lowerHere, inside: step.inside, last: 'name', slash};
      }
      if (step.entry.kind !== 'dir') throw fsError('ENOTDIR', syscall, p);
      done.push(name);
      states.push(step.inside!);
    }
    // The root, or a symlink whose target is "/".
    return {...(await this.directoryAt(done, syscall)), last: done.length === 0 ? 'root' : 'dot'};
  }

  /** The directory at canonical `parts` (every one a directory, none a symlink). */
  private async directoryAt(parts: readonly string[], syscall: string): Promise<Located> {
    if (parts.length > 0) return this.resolve(joinParts(parts), 'name', syscall);
    const root = this.rootState();
    return {parts: [], entry: this.rootEntry(root), parent: root, lowerHere: undefined, inside: root, last: 'root', slash: false};
  }

  private rootState(): DirState {
    if (!this.upperRoot) return {upper: undefined, lower: this.lowerTree};
    const opaque = this.store.upper.isOpaque(this.upperRoot);
    return {upper: this.upperRoot, lower: opaque ? undefined : this.lowerTree};
  }

  private rootEntry(root: DirState): ViewEntry {
    if (root.upper) {
      const st = fs.lstatSync(root.upper, {throwIfNoEntry: false});
      if (st) return entryFromStats('', st, root.upper);
    }
    return rootEntry(this.lowerTree, this.lowerRoot);
  }

  /** One name in one directory: what the upper and the lower have there, and what wins. */
  private async step(state: DirState, name: string): Promise<{entry: ViewEntry | undefined; lowerHere: ViewEntry | undefined; inside: DirState | undefined}> {
    const hostPath = state.upper && path.join(state.upper, name);
    const st = hostPath ? fs.lstatSync(hostPath, {throwIfNoEntry: false}) : undefined;
    const lowerEntry = state.lower ? findEntry(state.lower, name) : undefined;
    const lowerTree = lowerEntry?.kind === 'dir' ? await this.store.getTree(lowerEntry.tree) : undefined;
    const lowerHere = lowerEntry && lowerEntry.kind !== 'whiteout' ? entryFromTree(lowerEntry, lowerTree) : undefined;
    if (st && this.store.upper.isWhiteout(st)) return {entry: undefined, lowerHere, inside: undefined};
    if (st) {
      const entry = entryFromStats(name, st, hostPath!, st.isSymbolicLink() ? fs.readlinkSync(hostPath!) : undefined);
      if (!st.isDirectory()) return {entry, lowerHere, inside: undefined};
      const opaque = this.store.upper.isOpaque(hostPath!);
      return {entry, lowerHere, inside: {upper: hostPath, lower: opaque ? undefined : lowerTree}};
    }
    if (!lowerHere) return {entry: undefined, lowerHere, inside: undefined};
    return {entry: lowerHere, lowerHere, inside: lowerTree ? {upper: undefined, lower: lowerTree} : undefined};
  }

  private async list(dir: DirState): Promise<ViewEntry[]> {
    const out = new Map<string, ViewEntry>();
    const whiteouts = new Set<string>();
    if (dir.upper) {
      for (const name of fs.readdirSync(dir.upper)) {
        const host = path.join(dir.upper, name);
        const st = fs.lstatSync(host);
        if (this.store.upper.isWhiteout(st)) {
          whiteouts.add(name);
          continue;
        }
        out.set(name, entryFromStats(name, st, host, st.isSymbolicLink() ? fs.readlinkSync(host) : undefined));
      }
    }
    for (const e of dir.lower?.entries ?? []) {
      if (e.kind === 'whiteout' || out.has(e.name) || whiteouts.has(e.name)) continue;
      out.set(e.name, entryFromTree(e, e.kind === 'dir' ? await this.store.getTree(e.tree) : undefined));
    }
    return [...out.values()].sort((a, b) => compareNames(a.name, b.name));
  }

  // ---- copy-up and the upper ------------------------------------------------------------

  private writable(syscall: string, p: ViewPath): string {
    if (!this.upperRoot) throw fsError('EROFS', syscall, p);
    return this.upperRoot;
  }

  private existing(loc: Located, syscall: string, p: ViewPath): ViewEntry {
    if (!loc.entry) throw fsError('ENOENT', syscall, p);
    return loc.entry;
  }

  private async existingLoc(p: ViewPath, final: Final, syscall: string): Promise<Located> {
    const loc = await this.resolve(p, final, syscall);
    this.existing(loc, syscall, p);
    return loc;
  }

  private async fileEntry(p: ViewPath, syscall: string): Promise<ViewEntry> {
    const entry = this.existing(await this.resolve(p, 'follow', syscall), syscall, p);
    if (entry.kind === 'dir') throw fsError('EISDIR', 'read', p);
    if (entry.kind !== 'file') throw fsError('EINVAL', 'read', p);
    return entry;
  }

  /** A path whose last name is about to be created through the mount: whiteout names are refused as in `creatableName`. */
  private creatable(p: ViewPath, syscall: string): ViewPath {
    if (path.posix.basename(p).startsWith(WHITEOUT_PREFIX))
      throw new UnionError('EINVAL', `${p}: names starting with ${WHITEOUT_PREFIX} are reserved for whiteouts`, {syscall, path: p});
    return p;
  }

  /** The last name of a path that is about to be created; whiteout names are reserved. */
  private creatableName(loc: Located, syscall: string, p: ViewPath): string {
    const name = loc.parts[loc.parts.length - 1];
    if (name === undefined || loc.last !== 'name') throw fsError('EEXIST', syscall, p);
    // The kernel takes such a name, but no OCI layer can hold it (its whiteout markers).
    if (name.startsWith(WHITEOUT_PREFIX))
      throw new UnionError('EINVAL', `${p}: names starting with ${WHITEOUT_PREFIX} are reserved for whiteouts`, {syscall, path: p});
    return name;
  }

  /** Makes sure the upper has every directory of `parts` (copying metadata up); returns its host path. */
  private async ensureUpperDir(parts: readonly string[], upper: string): Promise<string> {
    let state = this.rootState();
    let host = upper;
    if (!fs.existsSync(upper)) fs.mkdirSync(upper, {recursive: true});
    for (const name of parts) {
      const step = await this.step(state, name);
      if (!step.entry || step.entry.kind !== 'dir') throw fsError('ENOENT', 'mkdir', joinParts(parts));
      const parent = host;
      host = path.join(host, name);
      if (step.entry.source === 'lower') {
        keepTimes(parent, () => fs.mkdirSync(host));
        applyMeta(host, step.entry);
      }
      state = {upper: host, lower: step.inside!.lower};
    }
    return host;
  }

  /** Copies one entry up (a directory: metadata only); returns its host path in the upper. */
  private async copyUp(loc: Located, upper: string): Promise<string> {
    const entry = loc.entry!;
    if (entry.source === 'upper') return entry.hostPath!;
    if (loc.parts.length === 0) return this.ensureUpperDir([], upper);
    const parent = await this.ensureUpperDir(loc.parts.slice(0, -1), upper);
    const host = path.join(parent, entry.name);
    const before = fs.statSync(parent);
    await this.materialise(entry, host);
    fs.utimesSync(parent, before.atime, before.mtime);
    return host;
  }

  /** Creates a lower entry's copy at a host path, with its metadata. */
  private async materialise(entry: ViewEntry, host: string): Promise<void> {
    switch (entry.kind) {
      case 'dir':
        fs.mkdirSync(host);
        break;
      case 'file':
        await this.store.copyBlob(entry.blob!, host); // checked: damaged lower bytes never reach the upper
        break;
      case 'symlink':
        fs.symlinkSync(entry.target!, host);
        setRecordedOwner(host, fs.lstatSync(host), entry.uid, entry.gid);
        if (entry.xattrs) writeXattrsSync(host, entry.xattrs);
        fs.lutimesSync(host, entry.mtime, entry.mtime);
        return;
      default:
        makeSpecial(entry, host);
    }
    applyMeta(host, entry);
  }

  /**
   * Copies a directory and everything under it into the upper and makes each directory
   * opaque (dropping its now needless whiteouts), so the subtree no longer depends on
   * the lower: it can move anywhere and still show what it showed.
   */
  private async copyUpTree(loc: Located, upper: string): Promise<string> {
    const host = await this.copyUp(loc, upper);
    const walk = async (dir: DirState, dirHost: string) => {
      for (const child of await this.list(dir)) {
        const childHost = path.join(dirHost, child.name);
        if (child.source === 'lower') await this.materialise(child, childHost);
        if (child.kind === 'dir') {
          const step = await this.step(dir, child.name);
          await walk({upper: childHost, lower: step.inside?.lower}, childHost);
        }
      }
      const st = fs.statSync(dirHost);
      for (const name of fs.readdirSync(dirHost)) {
        const childHost = path.join(dirHost, name);
        if (this.store.upper.isWhiteout(fs.lstatSync(childHost))) fs.rmSync(childHost);
      }
      this.store.upper.setOpaque(dirHost);
      fs.utimesSync(dirHost, st.atime, st.mtime);
    };
    await walk(loc.inside!, host);
    return host;
  }

  private async makeDir(loc: Located, upper: string, mode: number, p: ViewPath): Promise<void> {
    const host = path.join(await this.ensureUpperDir(loc.parts.slice(0, -1), upper), this.creatableName(loc, 'mkdir', p));
    this.clearWhiteout(host);
    fs.mkdirSync(host);
    fs.chmodSync(host, mode & 0o7777);
    // A directory made where the lower has one (deleted before, so hidden) starts empty.
    if (loc.lowerHere?.kind === 'dir') this.store.upper.setOpaque(host);
  }

  private async erase(loc: Located, upper: string): Promise<void> {
    const entry = loc.entry!;
    if (entry.source === 'upper') fs.rmSync(entry.hostPath!, {recursive: true, force: true});
    if (loc.lowerHere) this.writeWhiteout(await this.ensureUpperDir(loc.parts.slice(0, -1), upper), loc.parts[loc.parts.length - 1]!);
  }

  private writeWhiteout(parentHost: string, name: string): void {
    this.store.upper.writeWhiteout(path.join(parentHost, name));
  }

  /** Removes the whiteout at `host`, if there is one, so a new entry can take the name. */
  private clearWhiteout(host: string): void {
    const st = fs.lstatSync(host, {throwIfNoEntry: false});
    if (st && this.store.upper.isWhiteout(st)) fs.rmSync(host);
  }
}

/** Whether a path's last part is not a name: it ends in "/", "/." or "/..", or is the root. */
function endsAtDirectory(p: ViewPath): boolean {
  return p === ROOT || p.endsWith('/') || p.endsWith('/.') || p.endsWith('/..');
}

/**
 * Runs a copy-up step inside an upper directory and puts the directory's times back:
 * a copy-up is no change to the directory, and overlayfs restores them too
 * (fs/overlayfs/copy_up.c, "restore timestamps on parent").
 */
function keepTimes(dirHost: string, fn: () => void): void {
  const before = fs.statSync(dirHost);
  fn();
  fs.utimesSync(dirHost, before.atime, before.mtime);
}

/**
 * Gives a host entry the metadata of a view entry: the owner first, since chown clears
 * the setuid and setgid bits (chown(2)); recorded beside it when strata may not chown.
 */
function applyMeta(host: string, e: ViewEntry): void {
  setRecordedOwner(host, fs.lstatSync(host), e.uid, e.gid);
  fs.chmodSync(host, e.mode);
  // After the owner: chown clears file capabilities (security.capability).
  if (e.xattrs) writeXattrsSync(host, e.xattrs);
  fs.utimesSync(host, e.mtime, e.mtime);
}

/** Node cannot make device nodes or fifos; mknod(1) can (devices need root). */
function makeSpecial(e: ViewEntry, host: string): void {
  if (!fs.mknodSync(host, e.kind as 'fifo' | 'char' | 'block', e.devmajor ?? 0, e.devminor ?? 0))
    throw new UnionError('EPERM', `cannot create ${e.kind} ${host} (mknod needs root)`, {syscall: 'mknod', path: host});
}

export {ROOT, childPath, parseViewPath};
