import {Command, Option} from 'clipanion';
import {inView} from '../viewArgs.js';
import {BaseCommand} from './BaseCommand.js';

export class CatCommand extends BaseCommand {
  static override paths = [['cat']];
  static override usage = Command.Usage({
    category: 'Images',
    description: 'print a file of an image',
    details: 'Writes the bytes of the file at PATH, as the image\'s merged view shows it (the highest layer that has it answers; symlinks are followed inside the view), to stdout. Large files are streamed. IMAGE may also be a container.',
    examples: [
      ['Print a file of an image', '$0 cat app:1 /etc/os-release'],
      ['Copy a file out of an image', '$0 cat app:1 /usr/bin/app > app'],
    ],
  });

  image = Option.String({name: 'IMAGE'});
  viewPath = Option.String({name: 'PATH'});

  async run(): Promise<number> {
    const {parseViewPath, resolveView} = await import('@strata/union');
    const p = parseViewPath(this.viewPath);
    const store = await this.openStore({readOnly: true});
    const {view} = await resolveView(store, this.image);
    // Errors name the view and the path (base:1:/etc/x: no such file or directory), as container errors do.
    await this.writeOut(await inView(this.image, () => view.open(p)));
    return 0;
  }
}
