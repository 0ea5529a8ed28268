import {StrataError} from '@strata/store';

/**
 * The errnos a view raises, as Node's fs does (code, syscall, path), so a test can hold a
 * view and a kernel overlayfs mount to the same expectations.
 */
export type Errno = 'ENOENT' | 'ENOTDIR' | 'EISDIR' | 'EEXIST' | 'ENOTEMPTY' | 'EINVAL' | 'ELOOP' | 'EPERM' | 'EROFS' | 'EBUSY';

/** Codes of union's own rules, which no filesystem has: containers, names, view paths. */
export type UnionDomainCode = 'UNKNOWN_CONTAINER' | 'AMBIGUOUS_ID' | 'NAME_TAKEN' | 'BAD_NAME' | 'UNKNOWN_VIEW'
  | 'MOUNTED'          // the container is mounted (rm without --force)
  | 'MOUNT_FAILED'     // mount(2) or umount(2) refused
  | 'MOUNT_BUSY'       // the mount point is taken, or a process still uses the mount
  | 'RUNNING'          // a process still runs in the container
  | 'NO_KERNEL_MOUNT'  // this host cannot mount containers (not root, no erofs, no data-only overlay lowers)
  | 'RUN_FAILED';      // the runtime (runc) could not start the container

export type UnionErrorCode = Errno | UnionDomainCode;

/** strerror(3)'s words, as Node's messages carry them. */
const DESCRIPTIONS: Record<Errno, string> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  EEXIST: 'file exists',
  ENOTEMPTY: 'directory not empty',
  EINVAL: 'invalid argument',
  ELOOP: 'too many levels of symbolic links',
  EPERM: 'operation not permitted',
  EROFS: 'read-only view',
  EBUSY: 'resource busy or locked',
};

/** A union error: an errno of a view (see `fsError`) or a domain code. */
export class UnionError extends StrataError {
  override name = 'UnionError';
  readonly code: UnionErrorCode;
  readonly syscall?: string;
  readonly path?: string;
  constructor(code: UnionErrorCode, message: string, details: {syscall?: string; path?: string} = {}, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    if (details.syscall) this.syscall = details.syscall;
    if (details.path) this.path = details.path;
  }
}

/** A Node-style error: `ENOENT: no such file or directory, open '/etc/x'`. */
export function fsError(code: Errno, syscall: string, path: string): UnionError {
  return new UnionError(code, `${code}: ${DESCRIPTIONS[code]}, ${syscall} '${path}'`, {syscall, path});
}
