import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {xattrBinding} from './xattrBinding.js';
import {StoreError} from '../errors.js';
import {fsPath, nameFromBytes} from '../objects/names.js';
import type {Xattrs} from '../objects/tree.js';

/**
 * Extended attributes of host paths, never following a symlink: @napi-rs/xattr calls
 * llistxattr/lgetxattr/lsetxattr (tried: a symlink lists its own attributes, not its
 * target's). Its paths are text, so a path with bytes that are not UTF-8 is given as
 * `/proc/self/fd/<parent fd>/<name>` when only its directories hold such bytes, and goes
 * by its bytes to getfattr/setfattr (Debian `attr`) when its own name does.
 */

/** Errors meaning "this filesystem or file keeps no xattrs": read as none. */
const NONE = /ENOTSUP|EOPNOTSUPP|not supported/i;

/** A path's xattrs (undefined when it has none). Throws the fs error for the caller to name. */
export function readXattrsSync(p: string): Xattrs | undefined {
  const read = (plain: string): Xattrs | undefined => {
    let names: string[];
    try {
      names = xattrBinding().listAttributesSync(plain);
    } catch (err) {
      if (NONE.test((err as Error).message)) return undefined;
      throw err;
    }
    const out: Record<string, Buffer> = {};
    for (const n of names) {
      const v = xattrBinding().getAttributeSync(plain, n);
      if (v) out[n] = Buffer.from(v);
    }
    return Object.keys(out).length > 0 ? out : undefined;
  };
  return withPlainPath(p, read, () => getfattr(p));
}

/** Sets xattrs on a path (not following a symlink). */
export function writeXattrsSync(p: string, xattrs: Xattrs): void {
  const names = Object.keys(xattrs);
  if (names.length === 0) return;
  withPlainPath(p, plain => { for (const n of names) xattrBinding().setAttributeSync(plain, n, xattrs[n]!); }, () => {
    for (const n of names) attrTool('setfattr', p, ['-h', '-n', n, '-v', `0x${xattrs[n]!.toString('hex')}`]);
  });
}

function withPlainPath<T>(p: string, fn: (plain: string) => T, byBytes: () => T): T {
  if (fsPath(p) === p) return fn(p);
  const name = path.basename(p);
  if (fsPath(name) !== name) return byBytes();
  const dir = fs.openSync(fsPath(path.dirname(p)), 'r');
  try {
    return fn(`/proc/self/fd/${dir}/${name}`);
  } finally {
    fs.closeSync(dir);
  }
}

function getfattr(p: string): Xattrs | undefined {
  const stdout = attrTool('getfattr', p, ['-h', '--absolute-names', '-d', '-m', '-', '-e', 'hex']);
  if (stdout === undefined) return undefined;
  const out: Record<string, Buffer> = {};
  for (const line of stdout.toString('latin1').split('\n')) {
    const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line);
    if (m) out[nameFromBytes(Buffer.from(m[1]!, 'latin1'))] = Buffer.from(m[2]!, 'hex');
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Runs getfattr or setfattr on a path given by its bytes (printf in sh: argv is text). Undefined: no xattrs here. */
function attrTool(tool: 'getfattr' | 'setfattr', p: string, args: readonly string[]): Buffer | undefined {
  const escaped = [...(fsPath(p) as Buffer)].map(b => `\\0${b.toString(8).padStart(3, '0')}`).join('');
  const r = spawnSync('sh', ['-c', `p="$(printf '%bx' "$1")"; p="\${p%x}"; shift; exec ${tool} "$@" -- "$p"`, 'sh', escaped, ...args]);
  if (r.error) throw new StoreError('UNSUPPORTED_ENTRY', `${p}: the xattrs of a name that is not UTF-8 need ${tool} (Debian attr)`, {cause: r.error});
  if (r.status === 0) return r.stdout;
  if (NONE.test(r.stderr.toString())) return undefined;
  throw new StoreError('UNSUPPORTED_ENTRY', `${p}: ${tool} failed: ${r.stderr.toString().trim()}`);
}
