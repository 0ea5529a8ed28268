import {ErofsError} from './errors.js';
import {XATTR_ENTRY_HEADER_SIZE, XATTR_PREFIXES, align} from './format.js';

/** One xattr as EROFS stores it: a prefix index, the rest of the name, the value. */
export interface XattrEntry {
  readonly index: number;
  readonly suffix: Buffer;
  readonly value: Buffer;
  /** Identifies equal (name, value) pairs for sharing. */
  readonly key: string;
  /** On-disk size: 4-byte header, name rest, value, padded to 4. */
  readonly size: number;
  /** Set on the `trusted.overlay.redirect` entry of a metacopy file: its redirect (counted by the writer apart). */
  readonly redirect?: string;
}

const OVERLAY = 'trusted.overlay.';
const OVERLAY_ESCAPED = 'trusted.overlay.overlay.';
const METACOPY = 'trusted.overlay.metacopy';
const REDIRECT = 'trusted.overlay.redirect';
const EMPTY = Buffer.alloc(0);

/**
 * The xattrs an inode carries in the image, sorted by name. The image is an overlayfs
 * lower layer, so (as composefs does) the content's own `trusted.overlay.*` xattrs are
 * escaped as `trusted.overlay.overlay.*`, which overlayfs shows unescaped; a metacopy file
 * (`redirect` given) gains `trusted.overlay.metacopy` (empty: no fs-verity digest) and
 * `trusted.overlay.redirect`, which send its reads to the data-only lower layer.
 */
export function inodeXattrs(own: Readonly<Record<string, Buffer>> | undefined, redirect: string | undefined, where: () => string): XattrEntry[] {
  if (!own && redirect === undefined) return [];
  const out: XattrEntry[] = [];
  for (const name in own) out.push(xattrEntry(name.startsWith(OVERLAY) ? OVERLAY_ESCAPED + name.slice(OVERLAY.length) : name, own[name]!, where));
  if (redirect !== undefined) out.push(METACOPY_ENTRY, redirectEntry(redirect));
  if (out.length > 1) out.sort(compareEntries);
  return out;
}

/** The `trusted.overlay.redirect` entry of a metacopy file (its value needs no check: the tree checked the redirect). */
export function redirectEntry(redirect: string): XattrEntry {
  const value = Buffer.from(redirect, 'utf8');
  return {index: REDIRECT_INDEX, suffix: REDIRECT_SUFFIX, value, key: redirectKey(redirect), size: redirectEntrySize(value.length), redirect};
}

/** The sharing key of a redirect entry (as xattrEntry makes it), for a redirect of printable ASCII or not. */
export function redirectKey(redirect: string): string {
  return REDIRECT_KEY_HEAD + (ASCII.test(redirect) ? redirect : Buffer.from(redirect, 'utf8').toString('latin1'));
}

/** The on-disk size of a redirect entry whose value has `valueBytes` bytes. */
export const redirectEntrySize = (valueBytes: number) => align(XATTR_ENTRY_HEADER_SIZE + REDIRECT_SUFFIX.length + valueBytes, 4);

/** Printable ASCII: a redirect whose bytes are its characters. */
export const ASCII = /^[\x20-\x7e]*$/;

/** By full name. No prefix is a prefix of another, so differing prefixes decide alone. */
function compareEntries(a: XattrEntry, b: XattrEntry): number {
  if (a.index === b.index) return Buffer.compare(a.suffix, b.suffix);
  return PREFIX_TEXT.get(a.index)! < PREFIX_TEXT.get(b.index)! ? -1 : 1;
}

function xattrEntry(name: string, value: Buffer, where: () => string): XattrEntry {
  const prefix = XATTR_PREFIXES.find(([p, , whole]) => (whole ? name === p : name.startsWith(p) && name.length > p.length));
  if (!prefix) throw new ErofsError('EROFS_BAD_XATTR', `${where()} has xattr ${JSON.stringify(name)}, which has no prefix EROFS can store (user., trusted., security., system.posix_acl_access/default)`);
  const suffix = Buffer.from(name.slice(prefix[0].length), 'utf8');
  if (suffix.length > 255) throw new ErofsError('EROFS_BAD_XATTR', `${where()} has xattr ${JSON.stringify(name)}, whose name is over 255 bytes past its prefix`);
  if (value.length > 0xffff) throw new ErofsError('EROFS_BAD_XATTR', `${where()} has xattr ${JSON.stringify(name)} of ${value.length} bytes; the limit is 65535`);
  const index = prefix[1];
  return {index, suffix, value, key: `${index}\0${suffix.toString('latin1')}\0${value.toString('latin1')}`, size: align(XATTR_ENTRY_HEADER_SIZE + suffix.length + value.length, 4)};
}

const PREFIX_TEXT = new Map(XATTR_PREFIXES.map(([p, i]) => [i, p]));
/** The empty `trusted.overlay.metacopy` every metacopy file carries. */
export const METACOPY_ENTRY = xattrEntry(METACOPY, EMPTY, () => METACOPY);
const REDIRECT_TEMPLATE = xattrEntry(REDIRECT, EMPTY, () => REDIRECT);
const REDIRECT_INDEX = REDIRECT_TEMPLATE.index;
/** `overlay.redirect`, the name past the `trusted.` prefix. */
export const REDIRECT_SUFFIX = REDIRECT_TEMPLATE.suffix;
const REDIRECT_KEY_HEAD = REDIRECT_TEMPLATE.key;

/** Writes one xattr entry (header, name rest, value, zero padding) at `at`; returns the end. */
export function putXattrEntry(buf: Buffer, at: number, e: XattrEntry): number {
  buf.writeUInt8(e.suffix.length, at);
  buf.writeUInt8(e.index, at + 1);
  buf.writeUInt16LE(e.value.length, at + 2);
  e.suffix.copy(buf, at + 4);
  e.value.copy(buf, at + 4 + e.suffix.length);
  buf.fill(0, at + 4 + e.suffix.length + e.value.length, at + e.size);
  return at + e.size;
}
