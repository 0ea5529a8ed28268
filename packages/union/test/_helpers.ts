import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {spawnSync} from 'node:child_process';
import type {ExecutionContext} from 'ava';
import {type ContainerRecord, type Digest, Store, importDirectory, OPAQUE_MARKER, WHITEOUT_PREFIX} from '@strata/store';
import {UnionError} from '../src/errors.js';
import {createContainer, openContainerView} from '../src/containers.js';
import {UnionView} from '../src/UnionView.js';
import {type ViewPath, parseViewPath} from '../src/viewPath.js';

// ---- layer specs ---------------------------------------------------------------------

export const WHITEOUT = {whiteout: true} as const;
export const DIR = {dir: true} as const;
export const OPAQUE = {dir: true, opaque: true} as const;

interface Owner { readonly mode?: number; readonly uid?: number; readonly gid?: number }
/** One entry of a layer: a string is a file's content. Parents are made as 0755 directories. */
export type SpecEntry =
  | string
  | (Owner & {readonly file: string})
  | (Owner & {readonly dir: true; readonly opaque?: boolean})
  | {readonly symlink: string}
  | {readonly link: string}
  | typeof WHITEOUT;
/** A layer: view path -> entry. */
export type LayerSpec = Readonly<Record<string, SpecEntry>>;

/** Every layer entry gets this mtime, so layers built twice are identical. */
const SPEC_MTIME = 1_700_000_000;

/**
 * Writes a layer spec into an empty host directory, in OCI/AUFS form (`.wh.` files) or in
 * kernel overlayfs form (whiteouts are 0/0 character devices, opaque directories carry
 * `trusted.overlay.opaque=y`; Documentation/filesystems/overlayfs.rst).
 */
export function writeLayerDir(root: string, spec: LayerSpec, form: 'oci' | 'overlay'): void {
  const paths = Object.keys(spec).sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : 1));
  const links: [string, string][] = [];
  for (const p of paths) {
    const e = spec[p]!;
    const host = path.join(root, p);
    fs.mkdirSync(path.dirname(host), {recursive: true});
    if (typeof e === 'string' || 'file' in e) {
      fs.writeFileSync(host, typeof e === 'string' ? e : e.file);
      if (typeof e !== 'string') own(host, e, 0o644);
    } else if ('dir' in e) {
      fs.mkdirSync(host, {recursive: true});
      own(host, e, 0o755);
      if (e.opaque && form === 'oci') fs.writeFileSync(path.join(host, OPAQUE_MARKER), '');
      if (e.opaque && form === 'overlay') run('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', host]);
    } else if ('symlink' in e) {
      fs.symlinkSync(e.symlink, host);
    } else if ('link' in e) {
      links.push([path.join(root, e.link), host]);
    } else if (form === 'oci') {
      fs.writeFileSync(path.join(path.dirname(host), WHITEOUT_PREFIX + path.basename(host)), '');
    } else {
      run('mknod', [host, 'c', '0', '0']);
    }
  }
  for (const [target, host] of links) fs.linkSync(target, host);
  setTimes(root);
}

function own(host: string, o: Owner, mode: number): void {
  fs.chownSync(host, o.uid ?? 0, o.gid ?? 0); // first: chown clears setuid and setgid bits
  fs.chmodSync(host, o.mode ?? mode);
}

function setTimes(dir: string): void {
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = fs.lstatSync(p);
    if (st.isDirectory()) setTimes(p);
    fs.lutimesSync(p, SPEC_MTIME, SPEC_MTIME);
  }
  fs.utimesSync(dir, SPEC_MTIME, SPEC_MTIME);
}

/** Runs a program that must succeed; its failure names the program (e.g. a missing setfattr). */
export function run(cmd: string, args: readonly string[]): string {
  const r = spawnSync(cmd, args, {encoding: 'utf8'});
  if (r.error) throw new Error(`${cmd} is not installed (scripts/setup.js installs it): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

// ---- stores, images, containers ------------------------------------------------------

/** A fresh temporary directory, deleted when the test ends. */
export function tempDir(t: ExecutionContext, label = 'strata-union-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), label));
  t.teardown(() => fs.rmSync(dir, {recursive: true, force: true}));
  return dir;
}

/** A fresh store; closed and deleted when the test ends. */
export async function openTempStore(t: ExecutionContext): Promise<Store> {
  const store = await Store.open(path.join(tempDir(t, 'strata-store-'), 'store'), {create: true});
  t.teardown(() => store.close());
  return store;
}

/** Imports each spec as a layer (bottom first) and stores the image; returns its id and layers. */
export async function putImageOf(t: ExecutionContext, store: Store, stack: readonly LayerSpec[]): Promise<{image: Digest; layers: Digest[]}> {
  const layers: Digest[] = [];
  for (const spec of stack) {
    const dir = tempDir(t, 'strata-layer-');
    writeLayerDir(dir, spec, 'oci');
    layers.push((await importDirectory(store, dir, {whiteoutNames: true})).layer.id);
  }
  return {image: await store.putImage({layers, config: {}}), layers};
}

export interface ContainerFixture {
  readonly store: Store;
  readonly image: Digest;
  readonly layers: Digest[];
  readonly container: ContainerRecord;
  readonly view: UnionView;
}

/** A store with the stack as an image and a fresh container on it. */
export async function containerFrom(t: ExecutionContext, stack: readonly LayerSpec[], store?: Store): Promise<ContainerFixture> {
  store ??= await openTempStore(t);
  const {image, layers} = await putImageOf(t, store, stack);
  const container = await createContainer(store, {image});
  return {store, image, layers, container, view: await openContainerView(store, container)};
}

/** A container view over the stack. */
export async function viewFrom(t: ExecutionContext, stack: readonly LayerSpec[]): Promise<UnionView> {
  return (await containerFrom(t, stack)).view;
}

export const vp = (p: string): ViewPath => parseViewPath(p);

/** A file's content as text, or null when the view has no such path. */
export async function readOrNull(view: UnionView, p: string): Promise<string | null> {
  try {
    return (await view.readFile(vp(p))).toString('utf8');
  } catch (err) {
    if (err instanceof UnionError && err.code === 'ENOENT') return null;
    throw err;
  }
}

// ---- what both subjects answer -------------------------------------------------------

/** An operation on a view, or a question about it, in a form both subjects take. */
export type Step =
  | readonly ['write', string, string]
  | readonly ['mkdir', string]
  | readonly ['rm', string]
  | readonly ['rmr', string]
  | readonly ['rename', string, string]
  | readonly ['symlink', string, string]
  | readonly ['link', string, string]
  | readonly ['chmod', string, number]
  | readonly ['chown', string, number, number]
  | readonly ['utimes', string, number]
  | readonly ['read', string]
  | readonly ['lstat', string]
  | readonly ['stat', string]
  | readonly ['readdir', string]
  | readonly ['readlink', string];

/** What an entry is, as both a view and a mount can tell (sizes of files only; no times). */
export interface Info {
  readonly kind: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtime: number;
}

export type Value = string | string[] | Info | null;
export type Outcome = {readonly ok: Value} | {readonly err: string};

/** Something that takes steps: the strata view, or a kernel overlayfs mount. */
export interface Subject {
  readonly name: string;
  run(step: Step): Promise<Outcome>;
  /** The whole merged tree: path -> "kind mode uid:gid content-or-target". */
  tree(): Promise<Record<string, string>>;
  /** How many renames the kernel refused with EXDEV and the test did by copy-and-delete. */
  readonly exdevFallbacks: number;
}

/** The strata view as a Subject. */
export function strataSubject(view: UnionView): Subject {
  const run = async (step: Step): Promise<Outcome> => {
    try {
      return {ok: await strataStep(view, step)};
    } catch (err) {
      if (err instanceof UnionError) return {err: err.code};
      throw err;
    }
  };
  return {name: 'strata', run, tree: () => strataTree(view), exdevFallbacks: 0};
}

async function strataStep(view: UnionView, step: Step): Promise<Value> {
  switch (step[0]) {
    case 'write': await view.writeFile(vp(step[1]), Buffer.from(step[2])); return null;
    case 'mkdir': await view.mkdir(vp(step[1])); return null;
    case 'rm': await view.remove(vp(step[1])); return null;
    case 'rmr': await view.remove(vp(step[1]), {recursive: true}); return null;
    case 'rename': await view.rename(vp(step[1]), vp(step[2])); return null;
    case 'symlink': await view.symlink(step[1], vp(step[2])); return null;
    case 'link': await view.link(vp(step[1]), vp(step[2])); return null;
    case 'chmod': await view.chmod(vp(step[1]), step[2]); return null;
    case 'chown': await view.chown(vp(step[1]), step[2], step[3]); return null;
    case 'utimes': await view.utimes(vp(step[1]), step[2]); return null;
    case 'read': return (await view.readFile(vp(step[1]))).toString('utf8');
    case 'lstat': case 'stat': {
      const e = step[0] === 'lstat' ? await view.lstat(vp(step[1])) : await view.stat(vp(step[1]));
      return {kind: e.kind, mode: e.mode, uid: e.uid, gid: e.gid, size: e.kind === 'file' ? e.size : 0, mtime: e.mtime};
    }
    case 'readdir': return (await view.readdir(vp(step[1]))).map(e => e.name).sort();
    case 'readlink': return view.readlink(vp(step[1]));
  }
}

async function strataTree(view: UnionView): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string) => {
    for (const e of await view.readdir(vp(dir))) {
      const p = dir === '/' ? `/${e.name}` : `${dir}/${e.name}`;
      const head = `${e.kind} ${e.mode.toString(8)} ${e.uid}:${e.gid}`;
      if (e.kind === 'file') out[p] = `${head} ${JSON.stringify((await view.readFile(vp(p))).toString('utf8'))}`;
      else if (e.kind === 'symlink') out[p] = `${head} -> ${e.target}`;
      else out[p] = head;
      if (e.kind === 'dir') await walk(p);
    }
  };
  await walk('/');
  return out;
}

/** A host directory tree in the same form as `Subject.tree` (never follows a symlink). */
export function hostTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const host = path.join(dir, name);
      const p = `${rel}/${name}`;
      const st = fs.lstatSync(host);
      const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'fifo';
      const head = `${kind} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (kind === 'file') out[p] = `${head} ${JSON.stringify(fs.readFileSync(host, 'utf8'))}`;
      else if (kind === 'symlink') out[p] = `${head} -> ${fs.readlinkSync(host)}`;
      else out[p] = head;
      if (kind === 'dir') walk(host, p);
    }
  };
  walk(root, '');
  return out;
}
