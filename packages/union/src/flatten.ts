import {type Digest, type Store, type Tree, type TreeEntry, emptyTree, findEntry, sortEntries} from '@strata/store';

/**
 * The merged tree of a layer stack (bottom first): what a view of those layers shows,
 * as one tree with no whiteouts and no opaque flags. Memoised in the store per chain id
 * for every prefix of the stack, so stacking a layer on a flattened image costs the size
 * of that layer, and a view over 1000 layers reads one tree. Returns the empty tree's
 * digest for an empty stack.
 */
export async function flattenLayers(store: Store, layers: readonly string[]): Promise<Digest> {
  const stack = layers as readonly Digest[];
  // Find the longest prefix that is already flattened.
  let k = stack.length;
  let base: Digest | undefined;
  while (k > 0) {
    base = await store.getFlat(stack.slice(0, k));
    if (base) break;
    k--;
  }
  if (k === 0) base = undefined;
  for (let i = k; i < stack.length; i++) {
    base = await applyLayer(store, base, stack[i]!);
    await store.putFlat(stack.slice(0, i + 1), base);
  }
  return base ?? store.putTree(emptyTree());
}

/**
 * Puts one layer's tree over a merged tree: whiteouts remove, opaque directories drop
 * what was below, directories merge, anything else replaces. Subtrees the layer does not
 * touch keep their digests, so the work is proportional to the layer.
 */
export async function applyLayer(store: Store, base: Digest | undefined, layer: Digest): Promise<Digest> {
  return mergeDir(store, base && (await store.getTree(base)), await store.getTree(layer));
}

async function mergeDir(store: Store, base: Tree | undefined, top: Tree): Promise<Digest> {
  const below = top.opaque ? undefined : base;
  const merged = new Map<string, TreeEntry>();
  for (const e of below?.entries ?? []) merged.set(e.name, e);
  for (const e of top.entries) {
    if (e.kind === 'whiteout') {
      merged.delete(e.name);
    } else if (e.kind === 'dir') {
      const under = below && findEntry(below, e.name);
      const underTree = under?.kind === 'dir' ? await store.getTree(under.tree) : undefined;
      merged.set(e.name, {name: e.name, kind: 'dir', tree: await mergeDir(store, underTree, await store.getTree(e.tree))});
    } else {
      merged.set(e.name, e);
    }
  }
  const {opaque: _opaque, entries: _entries, ...meta} = top;
  return store.putTree({...meta, opaque: false, entries: sortEntries([...merged.values()])});
}
