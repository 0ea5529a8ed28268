import {readXattrsSync} from '../host/hostXattrs.js';
import {OWNER_XATTR} from '../containers/ownerRecord.js';
import type {UpperForm} from '../containers/upperForm.js';
import type {Xattrs} from '../objects/tree.js';
import {existsSync, type Stats} from 'node:fs';

/**
 * A host entry's xattrs as a layer keeps them: all but, on a host that runs SELinux,
 * `security.selinux` (there, a label the host's policy gave the file, which runtimes set
 * again in a container; elsewhere nothing labels files, so a label is content: an image's
 * own, carried by a copy-up or a copy, and kept) and, in a writable layer
 * (`upper`), overlayfs's own `trusted.overlay.*` / `user.overlay.*` bookkeeping (format.md)
 * and strata's owner record (`OWNER_XATTR`, which the entry's uid:gid already says).
 * Import and commit store these, diff compares them, checkout writes them back.
 * Undefined when none is kept; throws the fs error for the caller to name.
 */
export function layerXattrs(hostPath: string, upper?: UpperForm): Xattrs | undefined {
  const all = readXattrsSync(hostPath);
  return all && keptXattrs(all, upper);
}

/** The xattrs a layer keeps of all an entry has (see `layerXattrs`); undefined when none. */
export function keptXattrs(all: Xattrs, upper?: UpperForm): Xattrs | undefined {
  const kept = Object.entries(all).filter(([n]) => !(n === 'security.selinux' && hostLabelsFiles()) && !(upper && (upper.isOverlayXattr(n) || n === OWNER_XATTR)));
  return kept.length > 0 ? Object.fromEntries(kept) : undefined;
}

let labels: boolean | undefined;

/** Whether this host runs SELinux, which labels every file made here (selinuxfs is mounted). */
function hostLabelsFiles(): boolean {
  return labels ??= existsSync('/sys/fs/selinux/enforce');
}

/**
 * The owner an entry of a writable layer shows, from all its xattrs (read once for the
 * layer's own): its owner record (`recordedOwner`), else its own. Only files and
 * directories carry a record.
 */
export function recordedOwnerIn(all: Xattrs | undefined, st: Stats): {uid: number; gid: number} {
  const value = (st.isFile() || st.isDirectory()) ? all?.[OWNER_XATTR] : undefined;
  const m = value && /^(\d+):(\d+)$/.exec(value.toString('latin1'));
  return m ? {uid: Number(m[1]), gid: Number(m[2])} : {uid: st.uid, gid: st.gid};
}

/** Whether two sets of xattrs are the same names with the same bytes. */
export function sameXattrs(a: Xattrs | undefined, b: Xattrs | undefined): boolean {
  const an = Object.keys(a ?? {});
  if (an.length !== Object.keys(b ?? {}).length) return false;
  return an.every(n => b![n] !== undefined && b![n]!.equals(a![n]!));
}
