import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {xattrBinding} from '../host/xattrBinding.js';
import {readXattrsSync, writeXattrsSync} from '../host/hostXattrs.js';
import {fsPath} from '../objects/names.js';
import {StoreError} from '../errors.js';
import {OPAQUE_MARKER, WHITEOUT_PREFIX} from '../objects/whiteoutNames.js';

/**
 * The on-disk form of a container's writable layer (its *upper* directory): the form of
 * Linux overlayfs (Documentation/filesystems/overlayfs.rst, "whiteouts and opaque
 * directories"), so that one directory is the kernel's upperdir while the container is
 * mounted and strata's own upper while it is not. The kernel reads no other form in an
 * upper (it shows `.wh.` files as ordinary files), and writes this one while mounted.
 *
 * - A **whiteout** is a character device 0/0 at the hidden name. strata makes it as a
 *   hardlink of one template per store (`<store>/whiteout`, made once by mknod(1): Node has
 *   no mknod; an unprivileged mknod of 0/0 works on Linux 5.8 and later), as the kernel
 *   itself links its whiteouts to one inode.
 * - An **opaque directory** carries the xattr `trusted.overlay.opaque` = `y`. A store made
 *   by a user other than root cannot set trusted xattrs (they need CAP_SYS_ADMIN), so it
 *   uses `user.overlay.opaque` and is mounted with `userxattr`, the rootless form the
 *   kernel reads there (strata.json records which: `"userxattr": true`).
 * - Every other `*.overlay.*` xattr is the kernel's bookkeeping (origin, impure…), not
 *   content.
 * - Names starting with `.wh.` are ordinary names in this form, as the kernel sees them;
 *   an OCI layer cannot hold them (they are its whiteout markers), so commit refuses them.
 *
 * This is the one place that knows that form; the union view, commit, diff and the store
 * upgrade ask it.
 */
export class UpperForm {
  /** The xattr namespace of overlayfs for this store: `trusted.overlay.` or `user.overlay.`. */
  readonly xattrPrefix: string;
  private readonly template: string;

  constructor(storeDir: string, readonly userxattr: boolean) {
    this.xattrPrefix = userxattr ? 'user.overlay.' : 'trusted.overlay.';
    this.template = path.join(storeDir, 'whiteout');
  }

  private get opaqueXattr(): string {
    return `${this.xattrPrefix}opaque`;
  }

  /** Whether an lstat of an upper entry is a whiteout (a character device 0/0). */
  isWhiteout(st: fs.Stats): boolean {
    return st.isCharacterDevice() && st.rdev === 0;
  }

  /** Whether an upper directory is opaque (hides the lower's entries at its path). */
  isOpaque(dir: string): boolean {
    // A path with bytes that are not UTF-8 goes through hostXattrs (@napi-rs/xattr takes text).
    const value = fsPath(dir) === dir ? xattrBinding().getAttributeSync(dir, this.opaqueXattr) : readXattrsSync(dir)?.[this.opaqueXattr];
    return value?.toString('latin1') === 'y';
  }

  /** Whether an xattr name is overlayfs's (bookkeeping or markers), not the entry's content. */
  isOverlayXattr(name: string): boolean {
    return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
  }

  /** Makes a whiteout at `host` (which must not exist). */
  writeWhiteout(host: string): void {
    for (let attempt = 0; ; attempt++) {
      try {
        fs.linkSync(this.template, fsPath(host));
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // ENOENT: no template yet (a new or upgraded store). EMLINK: the template has the
        // filesystem's most links (65,000 on ext4): a fresh template takes over.
        if ((code !== 'ENOENT' && code !== 'EMLINK') || attempt > 0 || !fs.existsSync(fsPath(path.dirname(host)))) throw err;
        this.makeTemplate();
      }
    }
  }

  /** Marks an upper directory opaque; its times stay (setxattr changes only the ctime). */
  setOpaque(dir: string): void {
    writeXattrsSync(dir, {[this.opaqueXattr]: Buffer.from('y')});
  }

  /** Creates (or replaces) the whiteout template: mknod to a temporary name, then rename. */
  makeTemplate(): void {
    const tmp = `${this.template}.${process.pid}`;
    fs.rmSync(tmp, {force: true});
    const r = spawnSync('mknod', [tmp, 'c', '0', '0'], {encoding: 'utf8'});
    if (r.error || r.status !== 0)
      throw new StoreError('UNSUPPORTED_ENTRY', `cannot make the whiteout device ${tmp} (mknod c 0 0: ${r.error?.message ?? r.stderr.trim()}); Linux 5.8 or later allows it without root`);
    fs.renameSync(tmp, this.template);
  }

  /**
   * Rewrites an upper in the AUFS/OCI form that strata kept before store format 2
   * (`.wh.<name>` files, a `.wh..wh..opq` file in an opaque directory) into this form.
   * Each marker is replaced by its kernel equivalent before it is removed, and each
   * directory's times are put back, so a kill part-way leaves an upper that a second
   * run finishes, and the view shows exactly what it showed. Returns the markers converted.
   */
  upgradeAufsUpper(upper: string): number {
    let converted = 0;
    const walk = (dir: string) => {
      const before = fs.lstatSync(dir);
      let changed = false;
      for (const name of fs.readdirSync(dir)) {
        const host = path.join(dir, name);
        const st = fs.lstatSync(host);
        if (st.isDirectory()) {
          walk(host);
          continue;
        }
        if (!name.startsWith(WHITEOUT_PREFIX) || !st.isFile()) continue;
        if (name === OPAQUE_MARKER) this.setOpaque(dir);
        else {
          // An entry at the name itself wins over its marker (the old view's rule).
          const hidden = path.join(dir, name.slice(WHITEOUT_PREFIX.length));
          if (!fs.lstatSync(hidden, {throwIfNoEntry: false})) this.writeWhiteout(hidden);
        }
        fs.unlinkSync(host);
        changed = true;
        converted++;
      }
      if (changed) fs.utimesSync(dir, before.atime, before.mtime);
    };
    if (fs.existsSync(upper)) walk(upper);
    return converted;
  }
}

/** The device numbers of an lstat's `rdev` (glibc's gnu_dev_major / gnu_dev_minor). */
export function deviceNumbers(rdev: number): {devmajor: number; devminor: number} {
  const r = BigInt(rdev);
  const devmajor = Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn));
  const devminor = Number((r & 0xffn) | ((r >> 12n) & ~0xffn));
  return {devmajor, devminor};
}
