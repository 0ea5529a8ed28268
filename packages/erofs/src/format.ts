/**
 * The EROFS on-disk constants strata writes (the kernel's fs/erofs/erofs_fs.h and the
 * EROFS "core on-disk format" documentation). All integers on disk are little-endian.
 */

export const BLOCK_BITS = 12;
/** 4 KiB blocks: the page size, so the kernel maps every block without splitting pages. */
export const BLOCK_SIZE = 1 << BLOCK_BITS;
export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 128;
export const SUPER_MAGIC = 0xe0f5e1e2;
/** Inodes sit on 32-byte slots; a nid is (byte offset - meta_blkaddr * BLOCK_SIZE) / 32. */
export const SLOT_SIZE = 32;
/** strata writes only 64-byte extended inodes: 64-bit mtime, 32-bit uid, gid and nlink. */
export const INODE_SIZE = 64;
export const DIRENT_SIZE = 12;
export const XATTR_IBODY_HEADER_SIZE = 12;
export const XATTR_ENTRY_HEADER_SIZE = 4;
/** A chunk-index entry that maps no block (a hole). */
export const NULL_ADDR = 0xffffffff;
export const MAX_NAME = 255;
/** Chunk size is BLOCK_SIZE << (0..31). */
export const MAX_CHUNK_BITS = 31;

export const FEATURE_INCOMPAT_CHUNKED_FILE = 0x4;

/** i_format bit 0: inode version (1 = extended); bits 1-3: data layout. */
export const I_VERSION_EXTENDED = 1;
export const LAYOUT = {
  /** Data in consecutive blocks from i_u.raw_blkaddr. */
  flatPlain: 0,
  /** Like flatPlain, but the last partial block follows the inode (tail packing). */
  flatInline: 2,
  /** i_u holds the chunk format; a block map of 4-byte entries follows the inode. */
  chunkBased: 4,
} as const;

/** Directory entry file types (the kernel's FT_* values). */
export const FILE_TYPE = {file: 1, dir: 2, char: 3, block: 4, fifo: 5, symlink: 7} as const;

export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

/**
 * xattr name indexes: an entry stores the index of its prefix and the rest of the name.
 * The two POSIX ACL names are whole names (their rest is empty).
 */
export const XATTR_PREFIXES: readonly (readonly [string, number, boolean])[] = [
  // [prefix, index, whole name]
  ['user.', 1, false],
  ['system.posix_acl_access', 2, true],
  ['system.posix_acl_default', 3, true],
  ['trusted.', 4, false],
  ['security.', 6, false],
];

/** The kernel's new_encode_dev: 12-bit major, 20-bit minor in 32 bits. */
export function encodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

export const align = (n: number, to: number) => Math.ceil(n / to) * to;
