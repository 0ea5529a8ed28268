import {isUtf8} from 'node:buffer';

/**
 * Names (and link targets, and xattr names) are bytes: Linux and tar allow any byte but
 * `/` and NUL, UTF-8 or not. In memory strata keeps them as JavaScript strings with one
 * lossless mapping, Python's `surrogateescape` (PEP 383): valid UTF-8 decodes as usual,
 * and each byte of an invalid sequence becomes the lone surrogate U+DC80 + (byte - 0x80).
 * So valid UTF-8 names are the strings they always were (and keep their tree digests),
 * `f\xff` and `f\xfe` stay two names, and `nameToBytes` gives the original bytes back.
 * Every edge converts: fs calls (`hostFs`), tar headers, the tree encoding.
 */
export function nameFromBytes(bytes: Uint8Array): string {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isUtf8(b)) return b.toString('utf8');
  let out = '';
  for (let i = 0; i < b.length;) {
    const c = b[i]!;
    if (c < 0x80) { out += String.fromCharCode(c); i++; continue; }
    const need = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    let cp = need === 1 ? c & 0x1f : need === 2 ? c & 0x0f : c & 0x07;
    let ok = need > 0;
    for (let k = 1; ok && k <= need; k++) {
      const cc = b[i + k];
      if (cc === undefined || (cc & 0xc0) !== 0x80) ok = false;
      else cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8 either.
    if (ok && (cp < [0, 0x80, 0x800, 0x10000][need]! || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))) ok = false;
    if (ok) { out += String.fromCodePoint(cp); i += need + 1; } else { out += String.fromCharCode(0xdc00 + c); i++; }
  }
  return out;
}

/** The bytes of a name (see `nameFromBytes`). Throws TypeError for a lone surrogate that is no escaped byte. */
export function nameToBytes(name: string): Buffer {
  if (!hasSurrogate(name)) return Buffer.from(name, 'utf8');
  const out: number[] = [];
  for (const ch of name) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0xdc80 && cp <= 0xdcff) out.push(cp - 0xdc00);
    else if (cp >= 0xd800 && cp <= 0xdfff) throw new TypeError(`assertion failed: ${JSON.stringify(name)} holds a lone surrogate that stands for no byte`);
    else for (const x of Buffer.from(ch, 'utf8')) out.push(x);
  }
  return Buffer.from(out);
}

/** Whether a name's bytes are not UTF-8 (it holds escaped bytes). */
export function hasEscapedBytes(name: string): boolean {
  return hasSurrogate(name) && !isUtf8(nameToBytes(name));
}

/** Whether a string is one `nameFromBytes` can give: no stray surrogates, no escapes that spell UTF-8. */
export function isCanonicalName(name: string): boolean {
  if (!hasSurrogate(name)) return true;
  try {
    return nameFromBytes(nameToBytes(name)) === name;
  } catch {
    return false;
  }
}

const SURROGATE = /[\ud800-\udfff]/;
function hasSurrogate(s: string): boolean {
  return SURROGATE.test(s);
}

/** A host path for Node's fs: the string itself, or its bytes when it holds escaped bytes. */
export function fsPath(p: string): string | Buffer {
  return hasSurrogate(p) ? nameToBytes(p) : p;
}
