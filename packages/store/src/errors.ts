/** Codes are the contract; messages may change. */
export type StoreErrorCode =
  | 'STORE_LOCKED'       // another process holds the store and did not let go in time
  | 'STORE_MISSING'      // no strata store at the given directory
  | 'STORE_VERSION'      // the store was written by a newer strata
  | 'NOT_A_STORE'        // the directory exists but is something else
  | 'OBJECT_MISSING'     // a digest names an object the store does not have
  | 'OBJECT_CORRUPT'     // stored bytes do not hash to their name, or do not decode
  | 'BAD_DIGEST'         // a string that is not a b3:<64 hex> digest
  | 'BAD_REFERENCE'      // a tag that is not name:tag
  | 'UNKNOWN_IMAGE'      // no image by that tag or id
  | 'UNKNOWN_LAYER'      // no layer by that id
  | 'AMBIGUOUS_ID'       // an id prefix that matches more than one object
  | 'UNSAFE_PATH'        // a path that is absolute, climbs out with .., or links out of the tree
  | 'NAME_TOO_LONG'      // a name over NAME_MAX or a path over PATH_MAX bytes, which no checkout could write
  | 'UNSUPPORTED_ENTRY'  // a socket or another kind strata cannot store
  | 'BAD_ARCHIVE'        // a truncated or malformed tar
  | 'SOURCE_MISSING'     // an import source that does not exist or cannot be read
  | 'SOURCE_CHANGED'     // a file of an import source changed while strata read it
  | 'IN_USE'             // an object still referenced (e.g. an image used by a container)
  | 'NAME_TAKEN'         // a container name another container has (taken meanwhile by another process)
  | 'NO_SPACE'           // the disk filled while writing
  | 'NOT_PINNED'         // unpinning an image or layer that has no pin
  | 'INDEX_CORRUPT'      // LevelDB's own files are damaged (strata verify --repair rebuilds them)
  | 'INDEX_MISSING'      // the store has no index/ (strata verify --repair rebuilds what the object files hold)
  | 'LAYER_TOO_LARGE'    // a layer that expands past the limit an import set
  | 'DIGEST_MISMATCH'    // an image blob whose bytes do not hash to the digest its descriptor names
  | 'BAD_MANIFEST'       // an image layout, docker archive, manifest or config that is malformed
  | 'TARGET_EXISTS'      // an export target that already exists
  | 'WHITEOUT_NAME'      // a writable layer holds a file named .wh.*, which no OCI layer can express
  | 'BAD_SETTING'        // an environment setting strata cannot use (STRATA_LOCK_TIMEOUT_MS=soon)
  | 'STORE_READONLY'     // the store cannot be written by this user (read-only filesystem, another owner)
  | 'NOT_MOUNTABLE'      // a tree a kernel EROFS metadata image cannot hold (an xattr name with no prefix EROFS knows)
  | 'HASH_UNAVAILABLE';  // the native BLAKE3 addon does not load on this platform (STRATA_HASH=wasm)

/**
 * An error strata explains to its user: a stable code and a one-line message that names
 * the object, never a stack. StoreError and @strata/union's UnionError are the two kinds;
 * the CLI shows these as they are and treats every other error (a TypeError, an fs error
 * from inside the store) as a bug. Subclasses narrow `code` to their own union of codes.
 */
export abstract class StrataError extends Error {
  abstract readonly code: string;
}

export class StoreError extends StrataError {
  override name = 'StoreError';
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/**
 * Names a failed read of an import source as SOURCE_MISSING (missing, unreadable, or a
 * path through a non-directory); returns other errors as they are.
 */
export function sourceError(err: unknown, p: string): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new StoreError('SOURCE_MISSING', `${p} does not exist`, {cause: err});
  if (code === 'EACCES' || code === 'EPERM') return new StoreError('SOURCE_MISSING', `${p} cannot be read (permission denied)`, {cause: err});
  if (code === 'ENOTDIR') return new StoreError('SOURCE_MISSING', `${p} is not a directory`, {cause: err});
  return err as Error;
}

/** True for the error level throws when another process holds the LevelDB lock. */
export function isLevelLocked(err: unknown): boolean {
  const e = err as {code?: string; cause?: {code?: string}} | undefined;
  return e?.code === 'LEVEL_DATABASE_NOT_OPEN' && e.cause?.code === 'LEVEL_LOCKED';
}

/**
 * True for a full disk: ENOSPC from Node's fs, or LevelDB's IO error, which carries the
 * system's text rather than a code.
 */
export function isNoSpace(err: unknown): boolean {
  const e = err as {code?: string; message?: string; cause?: {message?: string}} | undefined;
  return e?.code === 'ENOSPC' || /No space left on device/.test(`${e?.message ?? ''} ${e?.cause?.message ?? ''}`);
}

/** Turns ENOSPC from a write into a coded error, keeping the cause; rethrows the rest. */
export function rethrowNoSpace(err: unknown, what: string): never {
  if (isNoSpace(err))
    throw new StoreError('NO_SPACE', `the disk is full while writing ${what}`, {cause: err});
  throw err;
}
