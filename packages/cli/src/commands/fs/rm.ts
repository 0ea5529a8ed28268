import {Command, Option} from 'clipanion';
import {FsCommand} from './FsCommand.js';

export class FsRmCommand extends FsCommand {
  static override paths = [['fs', 'rm']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'remove paths of a container',
    details: 'Removes each PATH (a symlink itself, not its target). A directory must be empty unless `-r` is given. What the image has there is hidden by a whiteout; the image is unchanged.',
    examples: [
      ['Remove a file', '$0 fs rm web /etc/motd'],
      ['Remove a directory tree', '$0 fs rm web -r /var/cache'],
    ],
  });

  recursive = Option.Boolean('-r,--recursive', false, {description: 'remove directories and everything in them'});
  viewPaths = Option.Rest({name: 'PATH', required: 1});

  async run(): Promise<number> {
    await this.withView(this.viewPaths, async (view, paths) => {
      for (const p of paths) await view.lstat(p); // all must exist before anything goes
      for (const p of paths) await view.remove(p, {recursive: this.recursive});
    });
    return 0;
  }
}
