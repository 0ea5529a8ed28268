import {PREFIX} from '../index/keys.js';
import {KeySet} from './keySet.js';

/**
 * Where the edges of a node go, as `forEachEdge` (graph.ts) reports them: an index key, or
 * a blob's digest as its 32 bytes at an offset of a tree's encoding (gc's mark adds those to
 * its set as they are, with no hex string between).
 */
export interface EdgeSink {
  key(key: string): void;
  blobAt(buf: Buffer, at: number): void;
}

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
  return markEdges(roots, (node, sink) => { for (const next of edgesOf(node)) sink.key(next); });
}

/**
 * `mark` with edges given to a sink (graph.ts `forEachEdge`). With `into`, marks on from
 * that set: a root already in it is taken as followed, with all below it, except the nodes
 * of `expand`, which are followed again (gc's second mark: nodes the first one reached but
 * could not follow).
 */
export function markEdges(roots: Iterable<string>, forEachEdge: (node: string, sink: EdgeSink) => void,
  options: {into?: KeySet; expand?: Iterable<string>} = {}): KeySet {
  // Blob keys, nearly every node, are kept as 32 bytes each (keySet.ts), not as strings.
  const black = options.into ?? new KeySet();
  const grey: string[] = [...options.expand ?? []];
  for (const r of roots) if (black.add(r)) grey.push(r);
  // A node turns black when it is first seen; the queue holds those whose edges are unread.
  // Blobs are leaves: they never need the queue.
  const sink: EdgeSink = {
    key: next => { if (black.add(next) && !next.startsWith(PREFIX.blob)) grey.push(next); },
    blobAt: (buf, at) => { black.addBlobAt(buf, at); },
  };
  while (grey.length > 0) forEachEdge(grey.pop()!, sink);
  return black;
}
