import type {Stats} from 'node:fs';
import {xattrBinding} from '../host/xattrBinding.js';
import {lchownSync} from '../host/hostFs.js';
import {readXattrsSync, writeXattrsSync} from '../host/hostXattrs.js';
import {fsPath} from '../objects/names.js';

/**
 * The xattr in which a container's writable layer keeps the owner an entry shows when the
 * process that wrote it could not chown it (strata run without root, over an image whose
 * files belong to root). The value is `<uid>:<gid>` in decimal. A user xattr needs no
 * privilege, moves with the file on rename and goes with it on unlink, so the record
 * cannot outlive or lose its entry. Only regular files and directories can carry user
 * xattrs (xattr(7)); a symlink shows the owner it has on the host. Never layer content:
 * commit reads it as the owner, not as an xattr.
 */
export const OWNER_XATTR = 'user.strata.owner';

/** The owner a host entry of a writable layer shows: its owner record, else its own. */
export function recordedOwner(hostPath: string, st: Stats): {uid: number; gid: number} {
  if (!st.isFile() && !st.isDirectory()) return {uid: st.uid, gid: st.gid};
  // A path whose bytes are all UTF-8 is read directly (one lgetxattr); others by their bytes.
  const value = fsPath(hostPath) === hostPath ? xattrBinding().getAttributeSync(hostPath, OWNER_XATTR) : readXattrsSync(hostPath)?.[OWNER_XATTR];
  const m = value && /^(\d+):(\d+)$/.exec(Buffer.from(value).toString('latin1'));
  return m ? {uid: Number(m[1]), gid: Number(m[2])} : {uid: st.uid, gid: st.gid};
}

/**
 * Gives a host entry of a writable layer the owner it must show: lchown where the process
 * may (and then drops an owner record it had), else, for a file or directory, an owner
 * record. A symlink that cannot be chowned keeps its owner. `fresh`: the caller has just made
 * the entry, so it has no record to drop.
 */
export function setRecordedOwner(hostPath: string, st: Stats, uid: number, gid: number, options: {fresh?: boolean} = {}): void {
  try {
    lchownSync(hostPath, uid, gid);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    if (st.isFile() || st.isDirectory()) writeXattrsSync(hostPath, {[OWNER_XATTR]: Buffer.from(`${uid}:${gid}`)});
    return;
  }
  // A fresh entry (just made by the caller) has no record to clear, and the check would load the xattr addon.
  if (!options.fresh && (st.isFile() || st.isDirectory()) && fsPath(hostPath) === hostPath && xattrBinding().getAttributeSync(hostPath, OWNER_XATTR))
    xattrBinding().removeAttributeSync(hostPath, OWNER_XATTR);
}
