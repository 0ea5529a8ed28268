import {Command, Option} from 'clipanion';
import {listedEntry, renderLong} from '../ls.js';
import {FsCommand} from './FsCommand.js';

export class FsLsCommand extends FsCommand {
  static override paths = [['fs', 'ls']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'list a directory of a container',
    details: 'Lists PATH (default `/`) as the container shows it: its writable layer over its image. A file shows as itself.',
    examples: [
      ['List /etc of the container web', '$0 fs ls web /etc'],
      ['The same, with the container first', '$0 fs web ls /etc -l'],
    ],
  });

  viewPath = Option.String({name: 'PATH', required: false});
  long = Option.Boolean('-l', false, {description: 'show kind and mode, owner, size, time and link targets'});
  json = Option.Boolean('--json', false, {description: 'print [{name, kind, mode, uid, gid, mtime, size, target}] as JSON'});

  async run(): Promise<number> {
    const listed = await this.withView([this.viewPath ?? '/'], async (view, [p]) => {
      const entry = await view.stat(p!);
      const entries = entry.kind === 'dir' ? await view.readdir(p!) : [{...entry, name: p!.slice(p!.lastIndexOf('/') + 1)}];
      return entries.map(listedEntry);
    });
    this.print(this.json, listed, list => this.long ? renderLong(list, n => this.shownName(n)) : list.map(e => `${this.shownName(e.name)}\n`).join(''));
    return 0;
  }
}
