import {Command, Option} from 'clipanion';
import {FsCommand, parseMode} from './FsCommand.js';

export class FsMkdirCommand extends FsCommand {
  static override paths = [['fs', 'mkdir']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'make directories in a container',
    details: 'Creates each directory PATH (mode 755, or `--mode`). Its parent must exist, unless `-p` is given, which also accepts a directory that exists.',
    examples: [
      ['Make a directory', '$0 fs mkdir web /srv'],
      ['Make a directory and its parents', '$0 fs mkdir web -p /srv/www/static'],
    ],
  });

  parents = Option.Boolean('-p,--parents', false, {description: 'make missing parents; an existing directory is no error'});
  mode = Option.String('--mode', {description: 'permission bits in octal (default 755)'});
  viewPaths = Option.Rest({name: 'PATH', required: 1});

  async run(): Promise<number> {
    const mode = this.mode !== undefined ? parseMode(this.mode) : undefined;
    await this.withView(this.viewPaths, async (view, paths) => {
      for (const p of paths) await view.mkdir(p, {parents: this.parents, ...(mode !== undefined ? {mode} : {})});
    });
    return 0;
  }
}
