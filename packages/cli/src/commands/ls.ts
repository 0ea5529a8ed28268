import {Command, Option} from 'clipanion';
import type {ViewEntry} from '@strata/union';
import {formatBytes, formatMode, formatTable} from '../render.js';
import {inView} from '../viewArgs.js';
import {BaseCommand} from './BaseCommand.js';

/** One entry of `strata ls --json`: the view entry's user-facing fields. */
export type ListedEntry = Pick<ViewEntry, 'name' | 'kind' | 'mode' | 'uid' | 'gid' | 'mtime' | 'size' | 'target'>;

export class LsCommand extends BaseCommand {
  static override paths = [['ls']];
  static override usage = Command.Usage({
    category: 'Images',
    description: 'list a directory of an image',
    details: `
      Lists PATH (default \`/\`) as the image's merged view shows it: the names of every layer, with higher layers shadowing lower ones and whiteouts hiding names. Nothing is extracted. IMAGE may also be a container, whose writable layer is then on top.

      A directory's entries are listed in name order, dotfiles included; a file shows as itself. A symlink given as PATH is followed when it leads to a directory, except with \`-l\`.
    `,
    examples: [
      ['List the root of an image', '$0 ls app:1'],
      ['List a directory with modes, owners and sizes', '$0 ls app:1 /etc -l'],
    ],
  });

  image = Option.String({name: 'IMAGE'});
  viewPath = Option.String({name: 'PATH', required: false});
  long = Option.Boolean('-l', false, {description: 'show kind and mode, owner, size, time and link targets'});
  json = Option.Boolean('--json', false, {description: 'print [{name, kind, mode, uid, gid, mtime, size, target}] as JSON'});

  async run(): Promise<number> {
    const {parseViewPath, resolveView} = await import('@strata/union');
    const p = parseViewPath(this.viewPath ?? '/');
    const store = await this.openStore({readOnly: true});
    const {view} = await resolveView(store, this.image);
    const entries = await inView(this.image, async () => {
      let entry = await view.lstat(p);
      if (entry.kind === 'symlink' && !this.long && !this.json) {
        const target = await view.stat(p).catch(() => undefined); // a dangling link lists as itself
        if (target?.kind === 'dir') entry = target;
      }
      return entry.kind === 'dir' ? await view.readdir(p) : [{...entry, name: p.slice(p.lastIndexOf('/') + 1)}];
    });
    const listed = entries.map(listedEntry);
    this.print(this.json, listed, list => this.long ? renderLong(list, n => this.shownName(n)) : list.map(e => `${this.shownName(e.name)}\n`).join(''));
    return 0;
  }
}

export function listedEntry(e: ViewEntry): ListedEntry {
  return {name: e.name, kind: e.kind, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, size: e.size, ...(e.target !== undefined ? {target: e.target} : {})};
}

/** `ls -l` lines; `shown` escapes names for a terminal. */
export function renderLong(list: readonly ListedEntry[], shown: (name: string) => string = n => n): string {
  return formatTable(list.map(e => [
    formatMode(e.kind, e.mode),
    `${e.uid}:${e.gid}`,
    e.kind === 'file' ? formatBytes(e.size) : '',
    new Date(e.mtime * 1000).toISOString().slice(0, 16).replace('T', ' '),
    e.target !== undefined ? `${shown(e.name)} -> ${shown(e.target)}` : shown(e.name),
  ]), ['left', 'left', 'right']);
}
