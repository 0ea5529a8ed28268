import * as tar from 'tar-stream';
import {nameFromBytes} from '../objects/names.js';

/**
 * tar-stream with names and pax values kept as bytes. tar-stream 3.1.7 decodes header
 * names with `filenameEncoding` (utf-8 by default, which turns bytes that are not UTF-8
 * into U+FFFD) and every pax record as UTF-8 (headers.js `decodePax`), so `f\xff` and
 * `f\xfe` would both read as `f\ufffd` and a binary `security.capability` value would be
 * mangled. Here names are decoded as latin1 (one char per byte, so the bytes come back
 * exactly) and pax records by `decodePaxBytes`; `memberName` and `paxBytes` turn them into
 * strata's names and raw values. POSIX pax: without `hdrcharset=BINARY` path values are
 * UTF-8, with it they are raw bytes; both are bytes here, so no case is lost.
 */
export function extractTar(): tar.Extract {
  const extract = tar.extract({filenameEncoding: 'latin1'} as tar.ExtractOptions);
  const inner = extract as unknown as ExtractInternals;
  if (typeof inner._decodeLongHeader !== 'function')
    throw new TypeError('assertion failed: tar-stream no longer has _decodeLongHeader; pax records would be read as UTF-8');
  const decodeOther = inner._decodeLongHeader.bind(inner);
  inner._decodeLongHeader = function (this: ExtractInternals, buf: Buffer) {
    if (this._header.type === 'pax-header') this._pax = {...this._paxGlobal, ...decodePaxBytes(buf)};
    else if (this._header.type === 'pax-global-header') this._paxGlobal = decodePaxBytes(buf);
    else decodeOther(buf);
  };
  return extract;
}

interface ExtractInternals {
  _header: {type: string};
  _pax: Record<string, string> | null;
  _paxGlobal: Record<string, string> | null;
  _decodeLongHeader(buf: Buffer): void;
}

/** Pax extended header records (`<len> <key>=<value>\n`), keys and values as latin1 text of their bytes. */
export function decodePaxBytes(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < buf.length) {
    const space = buf.indexOf(0x20, at);
    if (space < 0) break;
    const len = Number(buf.toString('latin1', at, space));
    if (!Number.isSafeInteger(len) || len <= space - at || at + len > buf.length) break;
    const record = buf.subarray(space + 1, at + len - 1); // without the length and the final newline
    const eq = record.indexOf(0x3d);
    if (eq > 0) out[record.toString('latin1', 0, eq)] = record.toString('latin1', eq + 1);
    at += len;
  }
  return out;
}

/** A member's name or link name as strata keeps names (from the latin1 text `extractTar` gives). */
export function memberName(latin1: string): string {
  return nameFromBytes(Buffer.from(latin1, 'latin1'));
}

/** A pax value's bytes (from the latin1 text `extractTar` gives). */
export function paxBytes(latin1: string): Buffer {
  return Buffer.from(latin1, 'latin1');
}

/** Pax records for the given keys and raw values, in order: what tar-stream's pack writes, but with bytes. */
export function encodePaxBytes(records: readonly (readonly [string | Buffer, Buffer])[]): Buffer {
  const out: Buffer[] = [];
  for (const [key, value] of records) {
    const body = Buffer.concat([Buffer.of(0x20), Buffer.from(key), Buffer.of(0x3d), value, Buffer.of(0x0a)]);
    // The length counts its own digits (as tar-stream's addLength counts them).
    let digits = String(body.length).length;
    if (body.length + digits >= 10 ** digits) digits++;
    out.push(Buffer.from(String(body.length + digits), 'ascii'), body);
  }
  return Buffer.concat(out);
}
