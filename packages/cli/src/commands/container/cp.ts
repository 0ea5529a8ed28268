import * as fs from 'node:fs';
import * as path from 'node:path';
import {Command, Option, UsageError} from 'clipanion';
import type {Store} from '@strata/store';
import type {UnionView, ViewPath} from '@strata/union';
import {importProgressBar, type ImportProgressBar} from '../../progress.js';
import {formatBytes, plural} from '../../render.js';
import {inView, splitViewArgument, viewPathArgument} from '../../viewArgs.js';
import {BaseCommand} from '../BaseCommand.js';

/** `strata cp --json`. */
export interface CpReport {
  readonly from: string;
  readonly to: string;
  readonly files: number;
  readonly dirs: number;
  readonly symlinks: number;
  readonly hardlinks: number;
  readonly bytes: number;
}

export class CpCommand extends BaseCommand {
  static override paths = [['cp']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'copy files and trees between the host and a container',
    details: `
      One side is a host path, the other \`CONTAINER:PATH\` (an image as \`NAME:TAG:/PATH\` may be copied out of). Files, directories (with everything in them), symlinks (as they are) and hardlinks inside the tree are copied, with their modes and times.

      As cp(1): when the destination is an existing directory, the source goes into it under its own name; otherwise it is created at the destination, whose parent must exist. An existing file is replaced.
    `,
    examples: [
      ['Copy a file into a container', '$0 cp ./app.conf web:/etc/app.conf'],
      ['Copy a directory tree out of a container', '$0 cp web:/var/log ./logs'],
    ],
  });

  from = Option.String({name: 'FROM'});
  to = Option.String({name: 'TO'});
  json = Option.Boolean('--json', false, {description: 'print {from, to, files, dirs, symlinks, hardlinks, bytes} as JSON'});

  async run(): Promise<number> {
    const src = splitViewArgument(this.from), dst = splitViewArgument(this.to);
    if ((src === undefined) === (dst === undefined))
      throw new UsageError('cp copies between the host and a container: give exactly one CONTAINER:PATH (start a host path with ./ or / when it has a colon)');
    const viewPath = await viewPathArgument((src ?? dst)!.path);
    const hostPath = path.resolve(src ? this.to : this.from);
    const store = await this.openStore();
    const bar = await importProgressBar(this.context.stderr, this.context.stdout, undefined, 'copying');
    let report: Counts;
    try {
      if (src) {
        const {resolveView} = await import('@strata/union');
        const {view} = await resolveView(store, src.ref);
        report = await inView(src.ref, () => copyOut(store, view, viewPath, hostPath, bar));
      } else {
        const {openContainer} = await import('../../viewArgs.js');
        const {view, label} = await openContainer(store, dst!.ref);
        report = await inView(label, () => copyIn(view, hostPath, viewPath, bar));
      }
    } finally {
      bar.stop();
    }
    this.print(this.json, {...report, from: this.from, to: this.to}, r => `copied ${plural(r.files, 'file', 'files')} (${formatBytes(r.bytes)}), ${plural(r.dirs, 'directory', 'directories')}, ${plural(r.symlinks, 'symlink', 'symlinks')}, ${plural(r.hardlinks, 'hardlink', 'hardlinks')}\n`);
    return 0;
  }
}

type Counts = Omit<CpReport, 'from' | 'to'>;

/** Copies a host file or tree into a view (cp(1) rules for the destination). */
async function copyIn(view: UnionView, host: string, dest: ViewPath, bar: ImportProgressBar): Promise<Counts> {
  const {childPath, UnionError} = await import('@strata/union');
  const top = fs.lstatSync(host, {throwIfNoEntry: false});
  if (!top) throw new UnionError('ENOENT', `${host}: no such file or directory on the host`);
  const there = await view.stat(dest).catch(() => undefined);
  const target = there?.kind === 'dir' ? childPath(dest, path.basename(host)) : dest;
  if (target === dest && !there) {
    const parent = dest.slice(0, dest.lastIndexOf('/')) || '/';
    const p = await view.stat(parent as ViewPath).catch(() => undefined);
    if (p?.kind !== 'dir') throw new UnionError('ENOENT', `the directory ${parent} does not exist (copying to ${dest})`, {path: dest});
  }
  const counts = {files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0};
  const links = new Map<string, ViewPath>(); // dev:ino of a host file with several links -> its first view path
  const dirTimes: [ViewPath, fs.Stats][] = [];
  const put = async (h: string, st: fs.Stats, p: ViewPath): Promise<void> => {
    if (st.isDirectory()) {
      const existing = await view.lstat(p).catch(() => undefined);
      if (existing && existing.kind !== 'dir') await view.remove(p);
      if (existing?.kind !== 'dir') await view.mkdir(p, {mode: 0o700});
      counts.dirs++;
      for (const name of fs.readdirSync(h).sort()) await put(path.join(h, name), fs.lstatSync(path.join(h, name)), childPath(p, name));
      dirTimes.push([p, st]);
      return;
    }
    const existing = await view.lstat(p).catch(() => undefined);
    if (existing && (existing.kind !== 'file' || st.isSymbolicLink() || st.nlink > 1)) await view.remove(p, {recursive: true});
    if (st.isSymbolicLink()) {
      await view.symlink(fs.readlinkSync(h), p);
      counts.symlinks++;
      return;
    }
    if (!st.isFile()) throw new UnionError('EINVAL', `${h}: only files, directories and symlinks can be copied in`, {path: h});
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 ? links.get(key) : undefined;
    if (first) {
      await view.link(first, p);
      counts.hardlinks++;
      return;
    }
    await view.writeFile(p, {hostFile: h}, {mode: st.mode & 0o7777});
    await view.chmod(p, st.mode & 0o7777);
    await view.utimes(p, Math.floor(st.mtimeMs / 1000));
    if (st.nlink > 1) links.set(key, p);
    counts.files++;
    counts.bytes += st.size;
    bar.onProgress({files: counts.files, bytes: counts.bytes});
  };
  await put(host, top, target);
  // Modes and times of directories last: adding entries changes a directory's mtime.
  for (const [p, st] of dirTimes) {
    await view.chmod(p, st.mode & 0o7777);
    await view.utimes(p, Math.floor(st.mtimeMs / 1000));
  }
  return counts;
}

/** Copies a view's file or directory out to the host (cp(1) rules for the destination). */
async function copyOut(store: Store, view: UnionView, from: ViewPath, host: string, bar: ImportProgressBar): Promise<Counts> {
  const {checkout, UnionError} = await import('@strata/union');
  const entry = await view.stat(from);
  const there = fs.statSync(host, {throwIfNoEntry: false});
  const name = from === '/' ? 'root' : from.slice(from.lastIndexOf('/') + 1);
  const target = there?.isDirectory() ? path.join(host, name) : host;
  if (!fs.statSync(path.dirname(target), {throwIfNoEntry: false})?.isDirectory())
    throw new UnionError('ENOENT', `${target}: the host directory ${path.dirname(target)} does not exist`, {path: target});
  if (entry.kind === 'dir') {
    if (fs.existsSync(target)) throw new UnionError('EEXIST', `${target} already exists on the host`, {path: target});
    const r = await checkout(store, view, target, {from, onProgress: (files, bytes) => bar.onProgress({files, bytes})});
    return {files: r.files, dirs: r.dirs + 1, symlinks: r.symlinks, hardlinks: r.hardlinks, bytes: r.bytes};
  }
  if (entry.kind !== 'file') throw new UnionError('EINVAL', `${from} is a ${entry.kind}; cp copies files and directories out`, {path: from});
  if (there?.isDirectory() && fs.statSync(target, {throwIfNoEntry: false})?.isDirectory())
    throw new UnionError('EISDIR', `${target} is a directory on the host`, {path: target});
  const tmp = `${target}.strata-cp-${process.pid}`;
  try {
    const out = fs.createWriteStream(tmp, {mode: 0o600});
    const {pipeline} = await import('node:stream/promises');
    await pipeline(await view.open(from), out);
    fs.chmodSync(tmp, entry.mode);
    fs.utimesSync(tmp, entry.mtime, entry.mtime);
    fs.renameSync(tmp, target);
  } finally {
    fs.rmSync(tmp, {force: true});
  }
  bar.onProgress({files: 1, bytes: entry.size});
  return {files: 1, dirs: 0, symlinks: 0, hardlinks: 0, bytes: entry.size};
}
