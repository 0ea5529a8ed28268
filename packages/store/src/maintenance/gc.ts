import {PREFIX} from '../index/keys.js';
import {KeySet} from './keySet.js';

/**
 * The mark phase of garbage collection, as a pure function over a graph (containerd's
 * `gc.Tricolor`): white nodes are unseen, grey ones are queued, black ones are done.
 * Nodes are index keys (`i:b3:…`, `l:b3:…`, `t:b3:…`, `b:b3:…`, `f:b3:…`); the store
 * supplies the roots and the edges and does the sweep (collectGarbage.ts).
 *
 * Cost: each reachable node is visited once and each edge followed once, so marking is
 * linear in what is live; `edgesOf` (graph.ts, the one definition of the edges) says
 * where they go, read from one scan of the index rather than one lookup per node.
 */
export function mark(roots: Iterable<string>, edgesOf: (node: string) => Iterable<string>): KeySet {
  // Blob keys, nearly every node, are kept as 32 bytes each (keySet.ts), not as strings.
  const black = new KeySet();
  const grey: string[] = [];
  for (const r of roots) if (black.add(r)) grey.push(r);
  // A node turns black when it is first seen; the queue holds those whose edges are unread.
  // Blobs are leaves: they never need the queue.
  while (grey.length > 0) {
    const node = grey.pop()!;
    for (const next of edgesOf(node)) if (black.add(next) && !next.startsWith(PREFIX.blob)) grey.push(next);
  }
  return black;
}
