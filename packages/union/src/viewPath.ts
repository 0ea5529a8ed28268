import {UnionError} from './errors.js';

/** An absolute, normalised path inside a view: "/", "/etc/hosts". Never has "." or ".." parts. */
export type ViewPath = string & {readonly __brand: 'ViewPath'};

export const ROOT = '/' as ViewPath;

/**
 * Parses a user's path inside a view. Relative paths start at the root; "." parts go;
 * ".." climbs lexically and may not climb above the root (ESCAPE). NUL is refused (EINVAL).
 */
export function parseViewPath(p: string): ViewPath {
  if (p.includes('\0')) throw new UnionError('EINVAL', `path ${JSON.stringify(p)} contains a NUL byte`);
  const parts: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) throw new UnionError('ESCAPE', `path ${p} climbs out of the view`);
      parts.pop();
    } else parts.push(part);
  }
  return joinParts(parts);
}

export function splitViewPath(p: ViewPath): string[] {
  return p === ROOT ? [] : p.slice(1).split('/');
}

export function joinParts(parts: readonly string[]): ViewPath {
  return `/${parts.join('/')}` as ViewPath;
}

export function childPath(dir: ViewPath, name: string): ViewPath {
  return (dir === ROOT ? `/${name}` : `${dir}/${name}`) as ViewPath;
}
