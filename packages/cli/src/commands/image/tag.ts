import {Command, Option} from 'clipanion';
import {parseTagArgument} from '../../arguments.js';
import {BaseCommand} from '../BaseCommand.js';

export class ImageTagCommand extends BaseCommand {
  static override paths = [['image', 'tag']];
  static override usage = Command.Usage({
    category: 'Images',
    description: 'give an image another tag',
    details: 'Points NAME:TAG at IMAGE (a tag, an id or a unique id prefix). A tag that named another image is moved; the other image keeps its other tags. Tags keep images alive through `strata gc`.',
    examples: [
      ['Tag an image as the latest release', '$0 image tag app:1 app:latest'],
      ['Tag an image by id prefix', '$0 image tag 9f1c2a base:stable'],
    ],
  });

  image = Option.String({name: 'IMAGE'});
  target = Option.String({name: 'NAME:TAG'});
  json = Option.Boolean('--json', false, {description: 'print {tag, image} as JSON'});

  async run(): Promise<number> {
    const tag = await parseTagArgument(this.target);
    const store = await this.openStore();
    const {id} = await store.resolveImage(this.image);
    await store.setTag(tag, id);
    this.print(this.json, {tag, image: id}, r => `tagged ${r.tag} -> ${r.image}\n`);
    return 0;
  }
}
