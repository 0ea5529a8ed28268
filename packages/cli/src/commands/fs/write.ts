import {Command, Option} from 'clipanion';
import {FsCommand, parseMode} from './FsCommand.js';

export class FsWriteCommand extends FsCommand {
  static override paths = [['fs', 'write']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'write stdin to a file of a container',
    details: 'Replaces the content of the file at PATH with stdin, creating it (mode 644, or `--mode`) if it is missing; its parent must exist. A file of the image is copied up first and keeps its mode unless `--mode` is given.',
    examples: [
      ['Write a file', 'echo web1 | $0 fs write web /etc/hostname'],
      ['Write an executable script', '$0 fs write web /usr/local/bin/hi --mode 755 < hi.sh'],
    ],
  });

  viewPath = Option.String({name: 'PATH'});
  mode = Option.String('--mode', {description: 'permission bits in octal (default 644 for a new file)'});

  async run(): Promise<number> {
    const mode = this.mode !== undefined ? parseMode(this.mode) : undefined;
    const chunks: Buffer[] = [];
    for await (const chunk of this.stdin) chunks.push(Buffer.from(chunk as Buffer));
    await this.withView([this.viewPath], async (view, [p]) => {
      await view.writeFile(p!, Buffer.concat(chunks), mode !== undefined ? {mode} : {});
      if (mode !== undefined) await view.chmod(p!, mode);
    });
    return 0;
  }
}
