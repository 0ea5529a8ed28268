import type * as tar from 'tar-stream';
import {StoreError} from '../errors.js';
import {WHITEOUT_PREFIX} from '../objects/whiteoutNames.js';
import {nameToBytes} from '../objects/names.js';

/** Linux's NAME_MAX and PATH_MAX (limits.h): a longer name or path cannot be checked out anywhere. */
const NAME_MAX = 255;
const PATH_MAX = 4096;

/** The largest uid or gid a tree holds (32 bits, docs/format.md). */
const ID_MAX = 0xffffffff;

/**
 * Refuses tar members that strata would otherwise store wrongly, before anything of them
 * is stored: a NUL inside a pax path, link path or xattr name (GNU tar would cut the name
 * there; strata refuses rather than guess: UNSAFE_PATH), a uid or gid that does not fit 32
 * bits (BAD_ARCHIVE; it would become 0), and a whiteout `.wh.` or `.wh..` that names no
 * entry (UNSAFE_PATH; it would hide its own directory), and a name over NAME_MAX bytes or a
 * path over PATH_MAX (NAME_TOO_LONG: refused here, in one line, rather than as ENAMETOOLONG at checkout).
 */
export function checkTarMember(h: tar.Headers & {pax?: Record<string, string> | null}): void {
  const pax = h.pax ?? {};
  for (const field of ['path', 'linkpath'] as const)
    if (pax[field]?.includes('\0')) throw new StoreError('UNSAFE_PATH', `tar member "${printable(pax[field]!)}" has a NUL byte in its pax ${field}`);
  for (const k of Object.keys(pax))
    if (k.includes('\0')) throw new StoreError('UNSAFE_PATH', `tar member "${printable(h.name)}" has a pax record name with a NUL byte ("${printable(k)}")`);
  for (const field of ['uid', 'gid'] as const) {
    const fromPax = pax[field];
    if (fromPax !== undefined && !(/^\d{1,20}$/.test(fromPax) && Number(fromPax) <= ID_MAX))
      throw new StoreError('BAD_ARCHIVE', `tar member "${printable(h.name)}" has ${field} ${printable(fromPax)}, which does not fit 32 bits`);
    const fromHeader = h[field];
    if (typeof fromHeader === 'number' && (fromHeader > ID_MAX || fromHeader < 0))
      throw new StoreError('BAD_ARCHIVE', `tar member "${printable(h.name)}" has ${field} ${fromHeader}, which does not fit 32 bits`);
  }
  if (nameToBytes(h.name).length > PATH_MAX)
    throw new StoreError('NAME_TOO_LONG', `tar member "${short(h.name)}" has a path over ${PATH_MAX} bytes`);
  const parts = h.name.split('/').filter(p => p !== '');
  for (const part of parts)
    if (nameToBytes(part).length > NAME_MAX)
      throw new StoreError('NAME_TOO_LONG', `tar member "${short(h.name)}" has a name over ${NAME_MAX} bytes`);
  const base = parts.pop();
  if (base === WHITEOUT_PREFIX || base === `${WHITEOUT_PREFIX}.`)
    throw new StoreError('UNSAFE_PATH', `tar member "${printable(h.name)}" is a whiteout that names no entry`);
}

/** The start and end of a long name, so the message stays one short line. */
function short(s: string): string {
  return s.length <= 80 ? printable(s) : `${printable(s.slice(0, 40))}…${printable(s.slice(-20))}`;
}

function printable(s: string): string {
  return s.replace(/\0/g, '\\0');
}
