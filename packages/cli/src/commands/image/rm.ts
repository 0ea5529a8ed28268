import {Command, Option} from 'clipanion';
import {BaseCommand} from '../BaseCommand.js';

export class ImageRmCommand extends BaseCommand {
  static override paths = [['image', 'rm']];
  static override usage = Command.Usage({
    category: 'Images',
    description: 'remove images',
    details: `
      Each IMAGE is a tag or an id. Given a tag of an image that has other tags, only that tag is removed; otherwise the image and all its tags are. An image that a container uses is not removed (remove the container first); then nothing is removed.

      Layers and files stay in the store until \`strata gc\` finds nothing else uses them.
    `,
    examples: [
      ['Remove an image by tag', '$0 image rm app:1'],
      ['Remove two images', '$0 image rm app:1 9f1c2a'],
    ],
  });

  images = Option.Rest({name: 'IMAGE', required: 1});
  json = Option.Boolean('--json', false, {description: 'print [{image, untagged, deleted}] as JSON'});

  async run(): Promise<number> {
    const store = await this.openStore();
    const {removeImages} = await import('@strata/store');
    const removed = await removeImages(store, this.images);
    this.print(this.json, removed, list => list.map(r =>
      r.deleted ? `deleted ${r.image}${r.untagged.length > 0 ? ` (was ${r.untagged.join(', ')})` : ''}\n` : `untagged ${r.untagged.join(', ')}\n`).join(''));
    return 0;
  }
}
