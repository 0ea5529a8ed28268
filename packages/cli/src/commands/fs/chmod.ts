import {Command, Option} from 'clipanion';
import {FsCommand, parseMode} from './FsCommand.js';

export class FsChmodCommand extends FsCommand {
  static override paths = [['fs', 'chmod']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'change the mode of paths in a container',
    details: 'Sets the permission bits of each PATH to MODE (octal), following symlinks inside the container. A path of the image is copied up first.',
    examples: [
      ['Make a script executable', '$0 fs chmod web 755 /usr/local/bin/hi'],
      ['The same, with the container first', '$0 fs web chmod 0600 /etc/secret'],
    ],
  });

  mode = Option.String({name: 'MODE'});
  viewPaths = Option.Rest({name: 'PATH', required: 1});

  async run(): Promise<number> {
    const mode = parseMode(this.mode);
    await this.withView(this.viewPaths, async (view, paths) => {
      for (const p of paths) await view.stat(p);
      for (const p of paths) await view.chmod(p, mode);
    });
    return 0;
  }
}
