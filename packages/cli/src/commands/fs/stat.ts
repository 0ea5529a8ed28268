import {Command, Option} from 'clipanion';
import {formatBytes, formatFields, formatMode} from '../../render.js';
import {type ListedEntry, listedEntry} from '../ls.js';
import {FsCommand} from './FsCommand.js';

/** `strata fs stat --json`. */
export interface StatReport extends Omit<ListedEntry, 'name'> {
  readonly path: string;
  /** Which layer answers: the container's writable layer, or the image. */
  readonly layer: 'container' | 'image';
}

export class FsStatCommand extends FsCommand {
  static override paths = [['fs', 'stat']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'show one path of a container',
    details: 'Shows the kind, mode, owner, size, time and link target of PATH (a final symlink is not followed), and whether the container\'s writable layer or its image answers for it.',
    examples: [
      ['Show a file', '$0 fs stat web /etc/hostname'],
      ['As JSON', '$0 fs stat web /etc/hostname --json'],
    ],
  });

  viewPath = Option.String({name: 'PATH'});
  json = Option.Boolean('--json', false, {description: 'print {path, kind, mode, uid, gid, mtime, size, target, layer} as JSON'});

  async run(): Promise<number> {
    const report = await this.withView([this.viewPath], async (view, [p]): Promise<StatReport> => {
      const e = await view.lstat(p!);
      const {name: _, ...fields} = listedEntry(e);
      return {path: p!, ...fields, layer: e.source === 'upper' ? 'container' : 'image'};
    });
    this.print(this.json, report, r => formatFields([
      ['path', r.target !== undefined ? `${r.path} -> ${r.target}` : r.path],
      ['kind', r.kind],
      ['mode', `${formatMode(r.kind, r.mode)} (${r.mode.toString(8).padStart(4, '0')})`],
      ['owner', `${r.uid}:${r.gid}`],
      ['size', r.kind === 'file' ? `${formatBytes(r.size)} (${r.size})` : ''],
      ['modified', new Date(r.mtime * 1000).toISOString()],
      ['layer', r.layer],
    ]));
    return 0;
  }
}
