export type ErofsErrorCode =
  /** A name that cannot be a directory entry: empty, `.`, `..`, with `/` or NUL, over 255 bytes. */
  | 'EROFS_BAD_NAME'
  /** Two entries of one directory with the same name. */
  | 'EROFS_DUPLICATE_NAME'
  /** An xattr EROFS cannot name (no known prefix) or whose value is over 65535 bytes. */
  | 'EROFS_BAD_XATTR'
  /** An entry whose fields are out of range (mode, owner, time, device numbers, link target). */
  | 'EROFS_BAD_ENTRY'
  /** The tree does not fit the format's limits (block count, root inode position). */
  | 'EROFS_TOO_LARGE';

/** A tree that cannot be written as an EROFS image; the code says which rule it broke. */
export class ErofsError extends Error {
  override name = 'ErofsError';
  readonly code: ErofsErrorCode;
  constructor(code: ErofsErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
