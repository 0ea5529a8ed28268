import {Command, Option} from 'clipanion';
import {BaseCommand} from './BaseCommand.js';

export class InitCommand extends BaseCommand {
  static override paths = [['init']];
  static override usage = Command.Usage({
    category: 'Store',
    description: 'create a store',
    details: 'Creates an empty store in the store directory (which must be empty or missing). Running it on an existing store changes nothing.',
    examples: [
      ['Create the default store', '$0 init'],
      ['Create a store in ./store', '$0 init --store ./store'],
    ],
  });

  json = Option.Boolean('--json', false, {description: 'print {"store": DIR} as JSON'});

  async run(): Promise<number> {
    const store = await this.openStore({create: true});
    this.print(this.json, {store: store.dir}, v => `strata store at ${v.store}\n`);
    return 0;
  }
}
