import {Command, Option} from 'clipanion';
import {FsCommand} from './FsCommand.js';

export class FsLnCommand extends FsCommand {
  static override paths = [['fs', 'ln']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'make a link in a container',
    details: 'Makes PATH a hard link to the file TARGET, or with `-s` a symbolic link whose target is TARGET as given (an absolute target is resolved from the container\'s root, never the host\'s).',
    examples: [
      ['Make a symbolic link', '$0 fs ln web -s /etc/hostname /etc/name'],
      ['Make a hard link', '$0 fs ln web /bin/busybox /bin/sh'],
    ],
  });

  symbolic = Option.Boolean('-s,--symbolic', false, {description: 'make a symbolic link instead of a hard link'});
  target = Option.String({name: 'TARGET'});
  viewPath = Option.String({name: 'PATH'});

  async run(): Promise<number> {
    if (this.symbolic) {
      if (this.target === '' || this.target.includes('\0')) throw new (await import('clipanion')).UsageError('a symlink target must be a non-empty path');
      await this.withView([this.viewPath], (view, [p]) => view.symlink(this.target, p!));
    } else {
      await this.withView([this.target, this.viewPath], (view, [target, p]) => view.link(target!, p!));
    }
    return 0;
  }
}
