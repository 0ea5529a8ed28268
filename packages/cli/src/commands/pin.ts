import {Command, Option} from 'clipanion';
import type {Pin} from '@strata/store';
import {BaseCommand} from './BaseCommand.js';

const kindOption = () => Option.Boolean('--layer', false, {description: 'REF names a layer (by default an image, then a layer)'});
const line = (p: Pin) => `${p.kind} ${p.id}\n`;

export class PinAddCommand extends BaseCommand {
  static override paths = [['pin', 'add']];
  static override usage = Command.Usage({
    category: 'Store',
    description: 'keep an image or a layer through gc',
    details: 'A pinned image or layer is a gc root, like a tag, without a name. A tag pins the image it names now.',
    examples: [['Pin an image by tag', '$0 pin add alpine:3.20'], ['Pin a layer by id prefix', '$0 pin add --layer 9f1c2a']],
  });

  ref = Option.String({name: 'REF'});
  layer = kindOption();
  json = Option.Boolean('--json', false, {description: 'print the pin as JSON'});

  async run(): Promise<number> {
    const {addPin} = await import('@strata/store');
    const store = await this.openStore();
    this.print(this.json, await addPin(store, this.ref, this.layer ? 'layer' : undefined), p => `pinned ${line(p)}`);
    return 0;
  }
}

export class PinRmCommand extends BaseCommand {
  static override paths = [['pin', 'rm']];
  static override usage = Command.Usage({
    category: 'Store',
    description: 'remove a pin',
    details: 'What the pin kept becomes garbage unless a tag, container, other pin or lease reaches it.',
    examples: [['Unpin an image', '$0 pin rm alpine:3.20']],
  });

  ref = Option.String({name: 'REF'});
  layer = kindOption();
  json = Option.Boolean('--json', false, {description: 'print the removed pin as JSON'});

  async run(): Promise<number> {
    const {removePin} = await import('@strata/store');
    const store = await this.openStore();
    this.print(this.json, await removePin(store, this.ref, this.layer ? 'layer' : undefined), p => `unpinned ${line(p)}`);
    return 0;
  }
}

export class PinLsCommand extends BaseCommand {
  static override paths = [['pin', 'ls']];
  static override usage = Command.Usage({
    category: 'Store',
    description: 'list pins',
    examples: [['List pins', '$0 pin ls']],
  });

  json = Option.Boolean('--json', false, {description: 'print the pins as a JSON array'});

  async run(): Promise<number> {
    const {listPins} = await import('@strata/store');
    const store = await this.openStore({readOnly: true});
    this.print(this.json, await listPins(store), pins => pins.map(line).join(''));
    return 0;
  }
}
