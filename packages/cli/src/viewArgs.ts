import {UsageError} from 'clipanion';
import type {ContainerRecord, Store} from '@strata/store';
import type {UnionView, ViewPath} from '@strata/union';

/** A container, its view, and the label errors name it by. */
export interface OpenedContainer {
  readonly container: ContainerRecord;
  readonly view: UnionView;
  readonly label: string;
}

/** Resolves a container name or id and opens its view. Throws UNKNOWN_CONTAINER, AMBIGUOUS_ID. */
export async function openContainer(store: Store, ref: string): Promise<OpenedContainer> {
  const {openContainerView, resolveContainer} = await import('@strata/union');
  const container = await resolveContainer(store, ref);
  return {container, view: await openContainerView(store, container), label: container.name ?? container.id.slice(0, 12)};
}

/**
 * Parses a path inside a view before the store opens (a NUL in it is a usage error). Its
 * ".." parts are resolved by the view after the symlinks before them, and stop at the
 * view's root, as in a chroot.
 */
export async function viewPathArgument(p: string): Promise<ViewPath> {
  const {parseViewPath, UnionError} = await import('@strata/union');
  try {
    return parseViewPath(p);
  } catch (err) {
    if (err instanceof UnionError) throw new UsageError(err.message);
    throw err;
  }
}

/**
 * Runs `work` on a view and rewrites the Node-style errors of the view so they name the
 * container: "ENOENT: no such file or directory, open '/x'" becomes
 * "web:/x: no such file or directory (open)". The code is kept.
 */
export async function inView<T>(label: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const {UnionError} = await import('@strata/union');
    if (!(err instanceof UnionError)) throw err;
    const nodeStyle = /^E[A-Z]+: (.*), \w+ '.*'$/.exec(err.message);
    const message = nodeStyle && err.path ? `${label}:${err.path}: ${nodeStyle[1]} (${err.syscall})` : `${label}: ${err.message}`;
    throw new UnionError(err.code, message, {...(err.syscall ? {syscall: err.syscall} : {}), ...(err.path ? {path: err.path} : {})}, {cause: err});
  }
}

/** `CONTAINER:PATH` or `IMAGE:TAG:/PATH` split into the view's name and the path in it; undefined for a host path. */
export function splitViewArgument(arg: string): {ref: string; path: string} | undefined {
  if (arg.startsWith('/') || arg.startsWith('./') || arg.startsWith('../') || arg === '.' || arg === '..') return undefined;
  const absolute = arg.indexOf(':/');
  const at = absolute > 0 ? absolute : arg.indexOf(':');
  if (at <= 0) return undefined;
  return {ref: arg.slice(0, at), path: arg.slice(at + 1) || '/'};
}
