import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {fsPath, nameFromBytes} from '../objects/names.js';
import {randomHex} from './randomHex.js';

/**
 * Node's synchronous fs calls for host paths that hold names as strata keeps them in
 * memory (objects/names.ts): a path with escaped bytes goes to the kernel as its bytes,
 * names and link targets come back as strings by the same mapping. Same names and
 * arguments as node:fs, so a module swaps `import * as fs from 'node:fs'` for this.
 * Directory listings and link targets are read as text first and again as bytes only
 * when the text shows U+FFFD (what Node puts where bytes are not UTF-8), so valid names
 * cost what they always did.
 */
export {constants, type Dirent, type Stats} from 'node:fs';

const REPLACEMENT = '\ufffd';

export function existsSync(p: string): boolean { return fs.existsSync(fsPath(p)); }
export function lstatSync(p: string): fs.Stats;
export function lstatSync(p: string, options: {throwIfNoEntry: false}): fs.Stats | undefined;
export function lstatSync(p: string, options?: {throwIfNoEntry: false}): fs.Stats | undefined {
  return options ? fs.lstatSync(fsPath(p), options) : fs.lstatSync(fsPath(p));
}
export function statSync(p: string): fs.Stats;
export function statSync(p: string, options: {throwIfNoEntry: false}): fs.Stats | undefined;
export function statSync(p: string, options?: {throwIfNoEntry: false}): fs.Stats | undefined {
  return options ? fs.statSync(fsPath(p), options) : fs.statSync(fsPath(p));
}
export function readdirSync(p: string): string[];
export function readdirSync(p: string, options: {withFileTypes: true}): fs.Dirent[];
export function readdirSync(p: string, options?: {withFileTypes: true}): string[] | fs.Dirent[] {
  const fp = fsPath(p);
  if (options?.withFileTypes) {
    const dirents = fs.readdirSync(fp, {withFileTypes: true});
    if (!dirents.some(d => d.name.includes(REPLACEMENT))) return dirents;
    return fs.readdirSync(fp, {withFileTypes: true, encoding: 'buffer'}).map(d => Object.assign(d, {name: nameFromBytes(d.name as unknown as Buffer)}) as unknown as fs.Dirent);
  }
  const names = fs.readdirSync(fp);
  if (!names.some(n => n.includes(REPLACEMENT))) return names;
  return fs.readdirSync(fp, {encoding: 'buffer'}).map(nameFromBytes);
}
export function readlinkSync(p: string): string {
  const target = fs.readlinkSync(fsPath(p));
  return target.includes(REPLACEMENT) ? nameFromBytes(fs.readlinkSync(fsPath(p), {encoding: 'buffer'})) : target;
}
export function readFileSync(p: string): Buffer { return fs.readFileSync(fsPath(p)); }
export function writeFileSync(p: string, data: string | Uint8Array): void { fs.writeFileSync(fsPath(p), data); }
export function mkdirSync(p: string, options?: fs.MakeDirectoryOptions): void { fs.mkdirSync(fsPath(p), options); }
export function symlinkSync(target: string, p: string): void { fs.symlinkSync(fsPath(target), fsPath(p)); }
export function linkSync(existing: string, p: string): void { fs.linkSync(fsPath(existing), fsPath(p)); }
export function rmSync(p: string, options?: fs.RmOptions): void { fs.rmSync(fsPath(p), options); }
export function rmdirSync(p: string): void { fs.rmdirSync(fsPath(p)); }
export function renameSync(from: string, to: string): void { fs.renameSync(fsPath(from), fsPath(to)); }
export function chmodSync(p: string, mode: number): void { fs.chmodSync(fsPath(p), mode); }
export function lchownSync(p: string, uid: number, gid: number): void { fs.lchownSync(fsPath(p), uid, gid); }
export function utimesSync(p: string, atime: fs.TimeLike, mtime: fs.TimeLike): void { fs.utimesSync(fsPath(p), atime, mtime); }
export function lutimesSync(p: string, atime: fs.TimeLike, mtime: fs.TimeLike): void { fs.lutimesSync(fsPath(p), atime, mtime); }
export function copyFileSync(from: string, to: string, mode?: number): void { fs.copyFileSync(fsPath(from), fsPath(to), mode); }
export function openSync(p: string, flags: fs.OpenMode, mode?: fs.Mode): number { return fs.openSync(fsPath(p), flags, mode); }
export function createReadStream(p: string, options?: Parameters<typeof fs.createReadStream>[1]): fs.ReadStream {
  return fs.createReadStream(fsPath(p), options);
}

/**
 * Makes a fifo or device node with mknod(1) (Node has no mknod; devices need root). Its
 * arguments are text, so a name with escaped bytes is made under a plain name beside it
 * and renamed. Returns false when mknod fails.
 */
export function mknodSync(p: string, kind: 'fifo' | 'char' | 'block', major = 0, minor = 0): boolean {
  const mknod = (at: string) => spawnSync('mknod', kind === 'fifo' ? [at, 'p'] : [at, kind === 'char' ? 'c' : 'b', String(major), String(minor)], {stdio: 'ignore'}).status === 0;
  if (fsPath(p) === p) return mknod(p);
  // The parent, opened here, is reached by mknod through this process's fd: a plain path.
  const dir = fs.openSync(fsPath(path.dirname(p)), 'r');
  try {
    const temp = `.strata-mknod-${process.pid}-${randomHex(4)}`;
    if (!mknod(`/proc/${process.pid}/fd/${dir}/${temp}`)) return false;
    renameSync(path.join(path.dirname(p), temp), p);
    return true;
  } finally {
    fs.closeSync(dir);
  }
}
