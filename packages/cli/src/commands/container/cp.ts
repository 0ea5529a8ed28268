import * as path from 'node:path';
import {Command, Option, UsageError} from 'clipanion';
import type {CopyCounts} from '@strata/union';
import {importProgressBar} from '../../progress.js';
import {formatBytes, plural} from '../../render.js';
import {inView, splitViewArgument, viewPathArgument} from '../../viewArgs.js';
import {BaseCommand} from '../BaseCommand.js';

/** `strata cp --json`. */
export interface CpReport extends CopyCounts {
  readonly from: string;
  readonly to: string;
}

export class CpCommand extends BaseCommand {
  static override paths = [['cp']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'copy files and trees between the host and a container',
    details: `
      One side is a host path, the other \`CONTAINER:PATH\` (an image as \`NAME:TAG:/PATH\` may be copied out of). Files, directories (with everything in them), symlinks (as they are) and hardlinks inside the tree are copied, with their modes, times and xattrs, and their owners when run as root (as cp -a).

      As cp -a: when the destination is an existing directory, the source goes into it under its own name; otherwise it is created at the destination, whose parent must exist. A destination ending in \`/\` must be a directory (or is made as one from a directory). An existing file is replaced; a directory is never replaced by a file, nor a file by a directory.
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
    const hostPath = hostPathArgument(src ? this.to : this.from);
    const store = await this.openStore();
    const bar = await importProgressBar(this.context.stderr, this.context.stdout, undefined, 'copying');
    const onProgress = (files: number, bytes: number) => bar.onProgress({files, bytes});
    let counts: CopyCounts;
    try {
      if (src) {
        const {copyOutOfView, resolveView} = await import('@strata/union');
        const {view} = await resolveView(store, src.ref);
        counts = await inView(src.ref, () => copyOutOfView(store, view, viewPath, hostPath, {onProgress}));
      } else {
        const {copyIntoView} = await import('@strata/union');
        const {openContainer} = await import('../../viewArgs.js');
        const {view, label} = await openContainer(store, dst!.ref);
        counts = await inView(label, () => copyIntoView(view, hostPath, viewPath, {onProgress}));
      }
    } finally {
      bar.stop();
    }
    const report: CpReport = {from: this.from, to: this.to, ...counts};
    this.print(this.json, report, r => `copied ${plural(r.files, 'file', 'files')} (${formatBytes(r.bytes)}), ${plural(r.dirs, 'directory', 'directories')}, ${plural(r.symlinks, 'symlink', 'symlinks')}, ${plural(r.hardlinks, 'hardlink', 'hardlinks')}\n`);
    return 0;
  }
}

/**
 * An absolute host path. A trailing "/" (a directory is meant) and "/." (a directory's
 * entries, not the directory) are kept: they mean something to cp.
 */
function hostPathArgument(p: string): string {
  const abs = path.resolve(p);
  if (p === '.' || p.endsWith('/.')) return abs === '/' ? '/.' : `${abs}/.`;
  return p.endsWith('/') && abs !== '/' ? `${abs}/` : abs;
}
