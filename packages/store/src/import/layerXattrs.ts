import {readXattrsSync} from '../host/hostXattrs.js';
import {OWNER_XATTR} from '../containers/ownerRecord.js';
import type {UpperForm} from '../containers/upperForm.js';
import type {Xattrs} from '../objects/tree.js';

/**
 * A host entry's xattrs as a layer keeps them: all but `security.selinux` (a label of this
 * host's policy, which runtimes set again in a container) and, in a writable layer
 * (`upper`), overlayfs's own `trusted.overlay.*` / `user.overlay.*` bookkeeping (format.md)
 * and strata's owner record (`OWNER_XATTR`, which the entry's uid:gid already says).
 * Import and commit store these, diff compares them, checkout writes them back.
 * Undefined when none is kept; throws the fs error for the caller to name.
 */
export function layerXattrs(hostPath: string, upper?: UpperForm): Xattrs | undefined {
  const all = readXattrsSync(hostPath);
  if (!all) return undefined;
  const kept = Object.entries(all).filter(([n]) => n !== 'security.selinux' && !(upper && (upper.isOverlayXattr(n) || n === OWNER_XATTR)));
  return kept.length > 0 ? Object.fromEntries(kept) : undefined;
}

/** Whether two sets of xattrs are the same names with the same bytes. */
export function sameXattrs(a: Xattrs | undefined, b: Xattrs | undefined): boolean {
  const an = Object.keys(a ?? {});
  if (an.length !== Object.keys(b ?? {}).length) return false;
  return an.every(n => b![n] !== undefined && b![n]!.equals(a![n]!));
}
