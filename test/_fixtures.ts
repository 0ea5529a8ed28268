import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {gzipSync} from 'node:zlib';
import type {ExecutionContext} from 'ava';
import {strata, tempDir} from './_cli.js';

/** Writes files under `root`: path -> content (a string), or null for an empty directory. */
export async function writeTree(root: string, files: Record<string, string | null>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(root, rel);
    if (content === null) await fs.mkdir(p, {recursive: true});
    else {
      await fs.mkdir(path.dirname(p), {recursive: true});
      await fs.writeFile(p, content);
    }
  }
}

/** One member of a hand-made tar: '0' file, '1' hardlink, '2' symlink, '5' directory, 'x' pax records (`content`) for the next member. */
export interface TarMember {
  readonly name: string;
  readonly type?: '0' | '1' | '2' | '5' | 'x';
  readonly content?: string;
  readonly linkname?: string;
  readonly mode?: number;
}

/**
 * A ustar archive written byte by byte (POSIX.1-1988 header layout), so tests can make
 * archives that tar programs refuse to write: absolute names, `..`, dangling hardlinks.
 */
export function tarOf(members: readonly TarMember[]): Buffer {
  const blocks: Buffer[] = [];
  for (const m of members) {
    const type = m.type ?? '0';
    const body = Buffer.from(type === '0' || type === 'x' ? m.content ?? '' : '', 'utf8');
    const h = Buffer.alloc(512);
    const put = (s: string, at: number, len: number) => { h.write(s, at, Math.min(len, Buffer.byteLength(s)), 'utf8'); };
    const octal = (n: number, at: number, len: number) => put(`${n.toString(8).padStart(len - 1, '0')}\0`, at, len);
    put(m.name, 0, 100);
    octal(m.mode ?? (type === '5' ? 0o755 : 0o644), 100, 8);
    octal(0, 108, 8);
    octal(0, 116, 8);
    octal(body.length, 124, 12);
    octal(1_700_000_000, 136, 12);
    put(' '.repeat(8), 148, 8);
    put(type, 156, 1);
    put(m.linkname ?? '', 157, 100);
    put('ustar\x0000', 257, 8);
    let sum = 0;
    for (const b of h) sum += b;
    put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Pax records as a pax header's body: `<length> <key>=<value>\n`, the length counting itself. */
export function paxRecords(records: Record<string, string>): string {
  return Object.entries(records).map(([k, v]) => {
    const rest = ` ${k}=${v}\n`;
    let n = Buffer.byteLength(rest) + 1;
    while (String(n).length + Buffer.byteLength(rest) !== n) n++;
    return `${n}${rest}`;
  }).join('');
}

/** Writes `members` as a tar (gzip-compressed when the name ends in .gz) and returns its path. */
export async function writeTar(file: string, members: readonly TarMember[]): Promise<string> {
  const tar = tarOf(members);
  await fs.writeFile(file, file.endsWith('.gz') ? gzipSync(tar) : tar);
  return file;
}

/** `strata layers --json` and `strata images --json`: what a failed command must leave unchanged. */
export async function storeState(t: ExecutionContext, store: string): Promise<{layers: unknown; images: unknown}> {
  const layers = await strata(['layers', '--json'], {store});
  const images = await strata(['images', '--json'], {store});
  t.is(layers.code, 0, layers.stderr);
  t.is(images.code, 0, images.stderr);
  return {layers: JSON.parse(layers.stdout), images: JSON.parse(images.stdout)};
}

/** Parses a command's --json output, failing the test with its stderr when it did not succeed. */
export function jsonOf<T = unknown>(t: ExecutionContext, r: {code: number; stdout: string; stderr: string}): T {
  t.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

export const DIGEST = /^b3:[0-9a-f]{64}$/;

/**
 * A store built once per test file and copied for each test (a closed LevelDB directory
 * copies like any other): each test gets its own store without paying for the strata
 * runs that fill it. `build` gets the template store and a scratch directory.
 */
export function storeTemplate<T>(build: (store: string, scratch: string) => Promise<T>): {copy(t: ExecutionContext): Promise<{store: string; made: T}>} {
  let template: Promise<{dir: string; made: T}> | undefined;
  const make = async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-template-'));
    process.once('exit', () => { fsSync.rmSync(dir, {recursive: true, force: true}); });
    const store = path.join(dir, 'store');
    const init = await strata(['init', '--store', store]);
    if (init.code !== 0) throw new Error(`strata init failed: ${init.stderr}`);
    return {dir, made: await build(store, await fs.mkdtemp(path.join(dir, 'scratch-')))};
  };
  return {
    async copy(t) {
      const {dir, made} = await (template ??= make());
      const store = path.join(await tempDir(t, 'strata-store-'), 'store');
      await fs.cp(path.join(dir, 'store'), store, {recursive: true});
      return {store, made};
    },
  };
}

/** Runs strata and returns its stdout, throwing (for templates, outside any test) when it fails. */
export async function mustRun(args: string[], store: string): Promise<string> {
  const r = await strata(args, {store});
  if (r.code !== 0) throw new Error(`strata ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}
