import {Command, Option} from 'clipanion';
import {FsCommand} from './FsCommand.js';

export class FsMvCommand extends FsCommand {
  static override paths = [['fs', 'mv']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'rename a path in a container',
    details: 'Renames FROM to TO as rename(2) does: a file at TO is replaced, a directory at TO must be empty; when TO is an existing directory and FROM is not, FROM moves into it. Directories of the image can be renamed too: they are copied into the writable layer.',
    examples: [
      ['Rename a file', '$0 fs mv web /etc/motd /etc/motd.old'],
      ['Move a file into a directory', '$0 fs mv web /tmp/app.conf /etc'],
    ],
  });

  from = Option.String({name: 'FROM'});
  to = Option.String({name: 'TO'});

  async run(): Promise<number> {
    await this.withView([this.from, this.to], async (view, [from, to]) => {
      const {baseName, childPath} = await import('@strata/union');
      const src = await view.lstat(from!);
      const dst = await view.stat(to!).catch(() => undefined);
      // As mv(1): a file moved onto a directory goes into it.
      const target = dst?.kind === 'dir' && src.kind !== 'dir' ? childPath(to!, baseName(from!)) : to!;
      await view.rename(from!, target);
    });
    return 0;
  }
}
