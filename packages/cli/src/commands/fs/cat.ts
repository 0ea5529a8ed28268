import {Command, Option} from 'clipanion';
import {FsCommand} from './FsCommand.js';

export class FsCatCommand extends FsCommand {
  static override paths = [['fs', 'cat']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'print a file of a container',
    details: 'Writes the bytes of each file to stdout, following symlinks inside the container.',
    examples: [
      ['Print a file', '$0 fs cat web /etc/hostname'],
      ['The same, with the container first', '$0 fs web cat /etc/hostname'],
    ],
  });

  viewPaths = Option.Rest({name: 'PATH', required: 1});

  async run(): Promise<number> {
    await this.withView(this.viewPaths, async (view, paths) => {
      for (const p of paths)
        if (!await this.writeOut(await view.open(p))) return;
    });
    return 0;
  }
}
