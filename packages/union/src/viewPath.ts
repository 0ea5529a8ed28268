import {UnionError} from './errors.js';

/**
 * An absolute path inside a view, as given: "/", "/etc/hosts", "/bin/../etc", "/srv/".
 * Its "." and ".." parts are kept, because only the view can resolve them: ".." steps
 * back from where the walk stands after following a symlink (path_resolution(7)), so
 * "/bin/../etc" with /bin -> usr/bin is /usr/etc, not /etc. A trailing "/" is kept too:
 * the last name must then be a directory. Paths made by `joinParts` are canonical.
 */
export type ViewPath = string & {readonly __brand: 'ViewPath'};

export const ROOT = '/' as ViewPath;

/**
 * Parses a user's path inside a view. Relative paths start at the root; repeated slashes
 * become one; "." and ".." stay for the view to resolve (it stops ".." at its root, as
 * chroot does, so no path leaves the view). NUL is refused (EINVAL).
 */
export function parseViewPath(p: string): ViewPath {
  if (p.includes('\0')) throw new UnionError('EINVAL', `path ${JSON.stringify(p)} contains a NUL byte`);
  const parts = p.split('/').filter(part => part !== '');
  return `/${parts.join('/')}${parts.length > 0 && p.endsWith('/') ? '/' : ''}` as ViewPath;
}

/** The parts of a path; a trailing "/" gives a last part "". */
export function splitViewPath(p: ViewPath): string[] {
  return p === ROOT ? [] : p.slice(1).split('/');
}

export function joinParts(parts: readonly string[]): ViewPath {
  return `/${parts.join('/')}` as ViewPath;
}

export function childPath(dir: ViewPath, name: string): ViewPath {
  return (dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`) as ViewPath;
}

/** The last name of a path as written ("" for the root), a trailing "/" ignored. */
export function baseName(p: ViewPath): string {
  const trimmed = p.endsWith('/') ? p.slice(0, -1) : p;
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}
