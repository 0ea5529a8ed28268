import type {Digest} from '../objects/digest.js';
import {StoreError} from '../errors.js';
import type {Store} from '../objects/Store.js';
import {IMPLICIT_DIR_META, type Meta, type Tree, type TreeEntry, isValidName, sortEntries} from '../objects/tree.js';

/** An entry of a layer being built: any tree entry but a directory, without its name. */
export type LeafEntry = WithoutName<Exclude<TreeEntry, {kind: 'dir'}>>;
type WithoutName<T> = T extends unknown ? Omit<T, 'name'> : never;

interface DirNode {
  kind: 'dir';
  meta: Meta;
  opaque: boolean;
  /** No entry of the source named it: it exists because a deeper path does. */
  implicit: boolean;
  children: Map<string, DirNode | LeafEntry>;
}

/** What a built layer holds: every entry (whiteouts too) and the bytes of its regular files. */
export interface LayerStats {
  readonly entries: number;
  readonly bytes: number;
}

/** Directories that a source names only as parents get this, as tar extractors do (and are implicit). */
export const DEFAULT_DIR_META: Meta = IMPLICIT_DIR_META;

/**
 * Collects a layer's entries by path, in any order, then writes its trees bottom-up.
 * Later entries for a path replace earlier ones (tar's rule); a path's parents are
 * implicit directories until their own entry arrives (the root too: a tar without `./`). Paths are component
 * arrays, already checked by the caller's parser (`splitLayerPath`).
 */
export class LayerBuilder {
  private readonly root: DirNode = implicitDir();

  /** Sets a directory (creating it, or keeping its children if it exists). */
  dir(path: readonly string[], meta: Meta): void {
    if (path.length === 0) {
      this.root.meta = meta;
      this.root.implicit = false;
      return;
    }
    const parent = this.parent(path);
    const name = path[path.length - 1]!;
    const existing = parent.children.get(name);
    if (existing?.kind === 'dir') {
      existing.meta = meta;
      existing.implicit = false;
    } else parent.children.set(name, {kind: 'dir', meta, opaque: false, implicit: false, children: new Map()});
  }

  /** Sets a non-directory entry. */
  leaf(path: readonly string[], entry: LeafEntry): void {
    if (path.length === 0) throw new StoreError('UNSAFE_PATH', `the root of a layer must be a directory, not a ${entry.kind}`);
    this.parent(path).children.set(path[path.length - 1]!, entry);
  }

  /** Marks a directory opaque: it hides whatever the layers below have there. */
  opaque(path: readonly string[]): void {
    let node = this.root;
    for (const name of path) node = this.childDir(node, name);
    node.opaque = true;
  }

  /** The entry at a path, if this layer has one. */
  get(path: readonly string[]): DirNode | LeafEntry | undefined {
    let node: DirNode | LeafEntry = this.root;
    for (const name of path) {
      if (node.kind !== 'dir') return undefined;
      const next: DirNode | LeafEntry | undefined = node.children.get(name);
      if (!next) return undefined;
      node = next;
    }
    return node;
  }

  /** Writes every tree to the store; returns the root tree's digest and the layer's stats. */
  async write(store: Store): Promise<{root: Digest} & LayerStats> {
    const stats = {entries: 0, bytes: 0};
    const root = await this.writeDir(store, this.root, stats);
    return {root, ...stats};
  }

  private async writeDir(store: Store, node: DirNode, stats: {entries: number; bytes: number}): Promise<Digest> {
    const entries: TreeEntry[] = [];
    for (const [name, child] of node.children) {
      stats.entries++;
      if (child.kind === 'dir') {
        entries.push({name, kind: 'dir', tree: await this.writeDir(store, child, stats)});
      } else {
        if (child.kind === 'file') stats.bytes += child.size;
        entries.push({...child, name} as TreeEntry);
      }
    }
    const tree: Tree = {...node.meta, opaque: node.opaque, ...(node.implicit ? {implicit: true} : {}), entries: sortEntries(entries)};
    return store.putTree(tree);
  }

  private parent(path: readonly string[]): DirNode {
    let node = this.root;
    for (let i = 0; i < path.length - 1; i++) node = this.childDir(node, path[i]!);
    return node;
  }

  private childDir(node: DirNode, name: string): DirNode {
    const child = node.children.get(name);
    if (child?.kind === 'dir') return child;
    // A parent that is missing, or was something else earlier in the source: a directory now.
    const dir = implicitDir();
    node.children.set(name, dir);
    return dir;
  }
}

function implicitDir(): DirNode {
  return {kind: 'dir', meta: IMPLICIT_DIR_META, opaque: false, implicit: true, children: new Map()};
}

/**
 * Splits an archive member name into path components, refusing names that are absolute
 * or climb out with `..` (UNSAFE_PATH). `./a//b/` -> ['a', 'b']; `.` -> [].
 */
export function splitLayerPath(name: string): string[] {
  if (name.startsWith('/')) throw new StoreError('UNSAFE_PATH', `"${name}" is an absolute path`);
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new StoreError('UNSAFE_PATH', `"${name}" climbs out of the layer with ..`);
    if (!isValidName(part)) throw new StoreError('UNSAFE_PATH', `"${name}" has a name strata cannot store`);
    parts.push(part);
  }
  return parts;
}
