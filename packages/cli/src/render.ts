import type {Digest, EntryKind} from '@strata/store';

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/**
 * Text for a terminal or pipe, with names as their bytes: a name that is not UTF-8 holds
 * escaped bytes (U+DC80 + byte, @strata/store names.ts), which go out as those bytes,
 * as ls(1) prints them. (Written here, not imported: the CLI loads the store lazily.)
 * JSON output keeps them as `\udcXX` escapes, which JSON.stringify writes for them.
 */
export function outputBytes(text: string): string | Buffer {
  if (!/[\udc80-\udcff]/u.test(text)) return text;
  const out: Buffer[] = [];
  let plain = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0xdc80 && cp <= 0xdcff) {
      out.push(Buffer.from(plain, 'utf8'), Buffer.of(cp - 0xdc00));
      plain = '';
    } else plain += ch;
  }
  out.push(Buffer.from(plain, 'utf8'));
  return Buffer.concat(out);
}

/** A size for people, in powers of 1024: "0 B", "999 B", "1.5 KiB", "12.3 MiB". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) throw new TypeError(`formatBytes: ${n} is not a size`);
  if (n < 1024) return `${Math.round(n)} B`;
  let value = n / 1024, unit = 0;
  // Round first so that 1023.96 KiB reads "1.0 MiB", never "1024.0 KiB".
  while (Math.round(value * 10) / 10 >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${UNITS[unit]}`;
}

/**
 * A count with thousands separators: "1,234". By hand for whole numbers: a process's first
 * `toLocaleString` loads ICU's number formatting, 65–115 ms here, which `strata import`
 * paid to print one line.
 */
export function formatCount(n: number): string {
  if (!Number.isSafeInteger(n)) return n.toLocaleString('en-US');
  return String(n).replace(/\B(?=(\d{3})+$)/g, ',');
}

/** "1 entry", "2 entries": a count and its noun. */
export function plural(n: number, one: string, many: string): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/**
 * The 12 hex digits that name an object in tables (as docker's short ids). Every command
 * that takes an id accepts such a prefix, with or without `b3:`.
 */
export function shortDigest(d: Digest | string): string {
  return (d.startsWith('b3:') ? d.slice(3) : d).slice(0, 12);
}

export type Align = 'left' | 'right';

/**
 * A plain table: the first row is the header, columns are separated by two spaces and
 * padded to their widest cell (right-aligned where `align` says so), no trailing spaces.
 */
export function formatTable(rows: readonly (readonly string[])[], align: readonly Align[] = []): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => { widths[i] = Math.max(widths[i] ?? 0, cell.length); });
  return rows.map(row => row.map((cell, i) => {
    const pad = ' '.repeat((widths[i] ?? 0) - cell.length);
    return align[i] === 'right' ? pad + cell : i === row.length - 1 ? cell : cell + pad;
  }).join('  ').trimEnd() + '\n').join('');
}

const TYPE_CHAR: Record<EntryKind, string> = {file: '-', hardlink: '-', dir: 'd', symlink: 'l', char: 'c', block: 'b', fifo: 'p', whiteout: 'w'};

/** Permission bits as ls -l shows them, with the kind first: "drwxr-xr-x", "-rwsr-xr-x". */
export function formatMode(kind: EntryKind, mode: number): string {
  const rwx = (bits: number, special: boolean, s: string) =>
    `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${special ? (bits & 1 ? s : s.toUpperCase()) : bits & 1 ? 'x' : '-'}`;
  if (kind === 'whiteout') return 'w---------';
  return TYPE_CHAR[kind]
    + rwx(mode >> 6, (mode & 0o4000) !== 0, 's')
    + rwx(mode >> 3, (mode & 0o2000) !== 0, 's')
    + rwx(mode, (mode & 0o1000) !== 0, 't');
}

/** "key  value" lines with the values aligned, for inspect reports. */
export function formatFields(fields: readonly (readonly [string, string])[]): string {
  const width = Math.max(0, ...fields.map(([k]) => k.length));
  return fields.map(([k, v]) => `${k.padEnd(width)}  ${v}`.trimEnd() + '\n').join('');
}

const C_ESCAPES: Record<string, string> = {'\n': '\\n', '\t': '\\t', '\r': '\\r', '\b': '\\b', '\f': '\\f', '\v': '\\v', '\x07': '\\a', '\\': '\\\\'};

/**
 * A name as `ls -b` shows it on a terminal: control characters (C0, DEL, C1) as C escapes
 * (`\n`, `\t`, `\033`) and a backslash as `\\`, so that a name can neither move the
 * cursor nor forge a line of output. Printable text, UTF-8 included, is left as it is.
 */
export function escapeName(name: string): string {
  // A byte that is not UTF-8 (U+DC80 + byte in memory, @strata/store names.ts) shows as its octal escape too.
  return name.replace(/[\x00-\x1f\x7f-\x9f\\\udc80-\udcff]/gu, c => C_ESCAPES[c] ?? `\\${(c.charCodeAt(0) >= 0xdc80 ? c.charCodeAt(0) - 0xdc00 : c.charCodeAt(0)).toString(8).padStart(3, '0')}`);
}
