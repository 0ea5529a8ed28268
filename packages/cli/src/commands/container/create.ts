import {Command, Option} from 'clipanion';
import type {ContainerRecord} from '@strata/store';
import {BaseCommand} from '../BaseCommand.js';

export class CreateCommand extends BaseCommand {
  static override paths = [['create']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'create a container from an image',
    details: 'The container is an empty writable layer over the image\'s layers; nothing is copied, so creating costs the same for any image size. Any number of containers share an image. Prints the new container\'s id.',
    examples: [
      ['Create a container', '$0 create app:1'],
      ['Create a container named web and print its record as JSON', '$0 create app:1 --name web --json'],
    ],
  });

  image = Option.String({name: 'IMAGE'});
  name = Option.String('--name', {description: 'a unique name for the container (letters, digits, _ . -)'});
  json = Option.Boolean('--json', false, {description: 'print {id, name, image, created} as JSON'});

  async run(): Promise<number> {
    const {createContainer} = await import('@strata/union');
    const store = await this.openStore();
    const c: ContainerRecord = await createContainer(store, {image: this.image, ...(this.name !== undefined ? {name: this.name} : {})});
    this.print(this.json, {id: c.id, name: c.name ?? null, image: c.image, created: c.created}, r => `${r.id}\n`);
    return 0;
  }
}
