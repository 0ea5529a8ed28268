/**
 * A class defined when first asked for. A class that extends one of Node's (a Transform) at
 * a module's top level needs that module when the store loads: `node:stream` and its ~20
 * internal modules, ~1.5 ms of every strata command though most stream nothing (the bundle
 * loads a builtin when first touched: docs/benchmarks.md, "Fixed cost of a command").
 */
export function definedOnUse<C>(define: () => C): () => C {
  let made: C | undefined;
  return () => (made ??= define());
}
