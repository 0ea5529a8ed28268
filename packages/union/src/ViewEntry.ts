import type {Stats} from 'node:fs';
import {type Digest, type Tree, type TreeEntry, type UpperForm, type Xattrs, layerXattrs, recordedOwner} from '@strata/store';

/** What a path is in a view. Whiteouts never show; a hardlink shows as the file it is. */
export type ViewKind = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';

/**
 * One path as the view shows it. `source` says which layer answered. Lower entries carry
 * their digests (`blob` of a file, `tree` of a directory untouched by the upper), so two
 * views can skip identical subtrees by comparing digests.
 */
export interface ViewEntry {
  readonly name: string;
  readonly kind: ViewKind;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
  /** A lower entry's xattrs (an upper entry's are read from its host path where needed: checkout, commit). */
  readonly xattrs?: Xattrs;
  /** Bytes of a file; 0 for everything else. */
  readonly size: number;
  readonly target?: string;
  readonly devmajor?: number;
  readonly devminor?: number;
  readonly source: 'upper' | 'lower';
  /** A lower file's content digest. */
  readonly blob?: Digest;
  /** A lower directory's tree, when the upper adds nothing to it. */
  readonly tree?: Digest;
  /** A lower file stored as a hardlink: the layer path of its first link. */
  readonly linkOf?: string;
  /** An upper entry's host file (under the container's writable layer). */
  readonly hostPath?: string;
  /** An upper file's link count and inode, to find its other links. */
  readonly nlink?: number;
  readonly ino?: number;
}

export function entryFromStats(name: string, st: Stats, hostPath: string, target?: string): ViewEntry {
  const kind: ViewKind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char'
    : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : 'file';
  const {uid, gid} = recordedOwner(hostPath, st); // the owner it shows, when strata could not chown it
  return {
    name, kind, mode: st.mode & 0o7777, uid, gid, mtime: Math.floor(st.mtimeMs / 1000),
    size: kind === 'file' ? st.size : 0, source: 'upper', hostPath, nlink: st.nlink, ino: st.ino,
    ...(target !== undefined ? {target} : {}),
  };
}

/** A lower tree entry as a view entry; a directory needs its tree for its metadata. */
export function entryFromTree(e: Exclude<TreeEntry, {kind: 'whiteout'}>, dirTree?: Tree): ViewEntry {
  switch (e.kind) {
    case 'dir': {
      const t = dirTree!;
      return {name: e.name, kind: 'dir', mode: t.mode, uid: t.uid, gid: t.gid, mtime: t.mtime, size: 0, source: 'lower', tree: e.tree, ...x(t)};
    }
    case 'file':
      return {name: e.name, kind: 'file', mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, size: e.size, source: 'lower', blob: e.blob, ...x(e)};
    case 'hardlink':
      return {name: e.name, kind: 'file', mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, size: e.size, source: 'lower', blob: e.blob, linkOf: e.target, ...x(e)};
    case 'symlink':
      return {name: e.name, kind: 'symlink', mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, size: 0, source: 'lower', target: e.target, ...x(e)};
    case 'char': case 'block':
      return {name: e.name, kind: e.kind, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, size: 0, source: 'lower', devmajor: e.devmajor, devminor: e.devminor, ...x(e)};
    case 'fifo':
      return {name: e.name, kind: 'fifo', mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, size: 0, source: 'lower', ...x(e)};
  }
}

/** An entry's xattrs: a lower one carries them; an upper one's are read from its host file, as a commit would keep them. */
export function entryXattrs(e: ViewEntry, upper: UpperForm): Xattrs | undefined {
  return e.source === 'upper' && e.hostPath !== undefined ? layerXattrs(e.hostPath, upper) : e.xattrs;
}

function x(m: {readonly xattrs?: Xattrs}): {xattrs?: Xattrs} {
  return m.xattrs ? {xattrs: m.xattrs} : {};
}

export function rootEntry(tree: Tree, digest: Digest): ViewEntry {
  return {name: '', kind: 'dir', mode: tree.mode, uid: tree.uid, gid: tree.gid, mtime: tree.mtime, size: 0, source: 'lower', tree: digest, ...x(tree)};
}
