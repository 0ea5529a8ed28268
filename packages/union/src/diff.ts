import * as fs from 'node:fs';
import {hashBytes, sameXattrs, type Digest} from '@strata/store';
import type {UnionView} from './UnionView.js';
import {type ViewEntry, entryXattrs} from './ViewEntry.js';
import {type ViewPath, ROOT, childPath} from './viewPath.js';

/** A: added; C: changed (content, metadata or xattrs, type, or something below); D: deleted (a deleted directory is one D). */
export type ChangeKind = 'A' | 'C' | 'D';

export interface Change {
  readonly kind: ChangeKind;
  readonly path: ViewPath;
}

/**
 * What changed from view `a` to view `b`, sorted by path. Directories whose lower trees
 * have equal digests are skipped without being read, so comparing a container with its
 * image reads only what its writable layer touches, and two images only what differs.
 */
export async function diffViews(a: UnionView, b: UnionView): Promise<Change[]> {
  const changes: Change[] = [];
  await diffDir(a, b, ROOT, await a.lstat(ROOT), await b.lstat(ROOT), changes);
  return changes.sort((x, y) => Buffer.compare(Buffer.from(x.path), Buffer.from(y.path)));
}

/** Compares the insides of two directories; true when anything below differs. */
async function diffDir(a: UnionView, b: UnionView, dir: ViewPath, ea: ViewEntry, eb: ViewEntry, out: Change[]): Promise<boolean> {
  if (ea.tree && ea.tree === eb.tree) return false;
  const names = upperNames(a, b, eb);
  const left = new Map((names ? await entriesOf(a, dir, names) : await a.readdir(dir)).map(e => [e.name, e]));
  const right = names ? await entriesOf(b, dir, names) : await b.readdir(dir);
  let changed = false;
  for (const eb2 of right) {
    const p = childPath(dir, eb2.name);
    const ea2 = left.get(eb2.name);
    left.delete(eb2.name);
    if (!ea2) {
      changed = true;
      await added(b, p, eb2, out);
    } else if (ea2.kind !== eb2.kind) {
      changed = true;
      out.push({kind: 'C', path: p});
      if (eb2.kind === 'dir') await addedBelow(b, p, out);
    } else if (eb2.kind === 'dir') {
      const below = await diffDir(a, b, p, ea2, eb2, out);
      if (below || !sameMeta(a, b, ea2, eb2)) {
        changed = true;
        out.push({kind: 'C', path: p});
      }
    } else if (!sameMeta(a, b, ea2, eb2) || !(await sameContent(ea2, eb2))) {
      changed = true;
      out.push({kind: 'C', path: p});
    }
  }
  for (const name of left.keys()) {
    changed = true;
    out.push({kind: 'D', path: childPath(dir, name)});
  }
  return changed;
}

/**
 * When `b` is a container over the very tree that `a` (an image view) shows, only the names
 * its writable layer holds in this directory can differ (entries and whiteouts; an opaque
 * directory hides everything below, so then every name counts): undefined for "all names".
 * This keeps a container's diff proportional to its changes, however wide the directory.
 */
function upperNames(a: UnionView, b: UnionView, eb: ViewEntry): string[] | undefined {
  if (a.upperRoot !== undefined || b.lowerRoot !== a.lowerRoot || eb.source !== 'upper' || !eb.hostPath) return undefined;
  if (b.upperForm.isOpaque(eb.hostPath)) return undefined;
  return fs.readdirSync(eb.hostPath); // a whiteout is a device at the name it hides
}

/** The entries of `names` in `dir` that the view shows, found one by one. */
async function entriesOf(view: UnionView, dir: ViewPath, names: readonly string[]): Promise<ViewEntry[]> {
  const out: ViewEntry[] = [];
  for (const name of names) {
    const p = childPath(dir, name);
    if (await view.exists(p)) out.push(await view.lstat(p));
  }
  return out;
}

async function added(view: UnionView, p: ViewPath, e: ViewEntry, out: Change[]): Promise<void> {
  out.push({kind: 'A', path: p});
  if (e.kind === 'dir') await addedBelow(view, p, out);
}

async function addedBelow(view: UnionView, dir: ViewPath, out: Change[]): Promise<void> {
  for (const e of await view.readdir(dir)) await added(view, childPath(dir, e.name), e, out);
}

/** Same metadata, xattrs included (a setfattr alone is a change, which commit keeps). */
function sameMeta(a: UnionView, b: UnionView, x: ViewEntry, y: ViewEntry): boolean {
  return x.mode === y.mode && x.uid === y.uid && x.gid === y.gid && x.mtime === y.mtime && x.size === y.size
    && x.target === y.target && x.devmajor === y.devmajor && x.devminor === y.devminor
    && sameXattrs(entryXattrs(x, a.upperForm), entryXattrs(y, b.upperForm));
}

async function sameContent(x: ViewEntry, y: ViewEntry): Promise<boolean> {
  if (x.kind !== 'file') return true;
  if (x.size !== y.size) return false;
  if (x.hostPath && x.hostPath === y.hostPath) return true;
  return contentDigest(x) === contentDigest(y);
}

function contentDigest(e: ViewEntry): Digest {
  return e.blob ?? hashBytes(fs.readFileSync(e.hostPath!));
}
