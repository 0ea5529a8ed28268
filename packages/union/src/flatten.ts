import {type Digest, type Meta, type Store, type Tree, type TreeEntry, emptyTree, findEntry, sortEntries} from '@strata/store';

/**
 * Prefixes memoised besides the whole stack: one every this many layers. Each memo is a
 * synced index write (~10 ms here), so memoising all 1000 prefixes of a 1000-layer image
 * cost ~10 s; this way a prefix that is not itself an image is at most 63 layers from a memo.
 */
const MEMO_EVERY = 64;

/**
 * The merged tree of a layer stack (bottom first): what a view of those layers shows,
 * as one tree with no whiteouts and no opaque flags. Memoised in the store per chain id
 * for the whole stack and every 64th prefix, so stacking a layer on a flattened image
 * costs the size of that layer, and a view over 1000 layers reads one tree. Returns the
 * empty tree's digest for an empty stack.
 */
export async function flattenLayers(store: Store, layers: readonly string[]): Promise<Digest> {
  const stack = layers as readonly Digest[];
  // Find the longest memoised prefix among those that can be: the whole stack, the stack
  // minus its top layer (an image one commit or import ago), and every 64th prefix. Each
  // try hashes its chain id (O(stack)), so trying every prefix would cost O(stack²).
  const tries = [...new Set([stack.length, stack.length - 1, ...multiplesBelow(stack.length, MEMO_EVERY)])].filter(k => k > 0);
  let k = 0;
  let base: Digest | undefined;
  for (const at of tries) {
    base = await store.getFlat(stack.slice(0, at));
    if (base) { k = at; break; }
  }
  for (let i = k; i < stack.length; i++) {
    base = await applyLayer(store, base, stack[i]!);
    if ((i + 1) % MEMO_EVERY === 0 || i + 1 === stack.length) await store.putFlat(stack.slice(0, i + 1), base);
  }
  return base ?? store.putTree(emptyTree());
}

/**
 * Puts one layer's tree over a merged tree: whiteouts remove, opaque directories drop
 * what was below, directories merge, anything else replaces. Subtrees the layer does not
 * touch keep their digests, so the work is proportional to the layer.
 */
async function applyLayer(store: Store, base: Digest | undefined, layer: Digest): Promise<Digest> {
  return mergeDir(store, base && (await read(store, base)), await read(store, layer));
}

/**
 * Trees are read and written past the store's cache: a flatten visits each tree of the
 * layer once, and caching them would hold every entry of a million-file layer (an import
 * with --tag, a commit) in memory.
 */
const read = (store: Store, d: Digest): Promise<Tree> => store.getTree(d, {cache: false});

async function mergeDir(store: Store, base: Tree | undefined, top: Tree): Promise<Digest> {
  const below = top.opaque ? undefined : base;
  const merged = new Map<string, TreeEntry>();
  for (const e of below?.entries ?? []) merged.set(e.name, e);
  for (const e of top.entries) {
    if (e.kind === 'whiteout') {
      merged.delete(e.name);
    } else if (e.kind === 'dir') {
      const under = below && findEntry(below, e.name);
      const underTree = under?.kind === 'dir' ? await read(store, under.tree) : undefined;
      merged.set(e.name, {name: e.name, kind: 'dir', tree: await mergeDir(store, underTree, await read(store, e.tree))});
    } else {
      merged.set(e.name, e);
    }
  }
  // A directory the layer holds only as a parent of deeper paths changes nothing of the
  // one below (containerd and podman keep the lower's metadata too); opaque or not, the
  // lower directory itself stays, only its entries are hidden.
  const meta = top.implicit && base ? base : top;
  return store.putTreeSync({...metaOf(meta), opaque: false, entries: sortEntries([...merged.values()])}, {cache: false});
}

function metaOf(t: Tree): Meta {
  return {mode: t.mode, uid: t.uid, gid: t.gid, mtime: t.mtime, ...(t.xattrs ? {xattrs: t.xattrs} : {})};
}

/** Multiples of `step` below `n`, largest first. */
function multiplesBelow(n: number, step: number): number[] {
  const out: number[] = [];
  for (let k = Math.floor((n - 1) / step) * step; k > 0; k -= step) out.push(k);
  return out;
}
