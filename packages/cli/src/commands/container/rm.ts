import {Command, Option} from 'clipanion';
import type {ContainerRecord} from '@strata/store';
import {BaseCommand} from '../BaseCommand.js';

export class RmCommand extends BaseCommand {
  static override paths = [['rm']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'remove containers',
    details: 'Removes each CONTAINER (a name, an id or a unique id prefix) with its writable layer; its changes are lost unless committed. Every argument is resolved first: if one is unknown, nothing is removed. The image stays.',
    examples: [
      ['Remove a container', '$0 rm web'],
      ['Remove two containers', '$0 rm web 3f9a1c'],
    ],
  });

  containers = Option.Rest({name: 'CONTAINER', required: 1});
  json = Option.Boolean('--json', false, {description: 'print [{id, name, image}] of the removed containers as JSON'});

  async run(): Promise<number> {
    const {removeContainer, resolveContainer} = await import('@strata/union');
    const store = await this.openStore();
    const found = new Map<string, ContainerRecord>();
    for (const ref of this.containers) {
      const c = await resolveContainer(store, ref);
      found.set(c.id, c);
    }
    for (const c of found.values()) await removeContainer(store, c.id);
    const removed = [...found.values()].map(c => ({id: c.id, name: c.name ?? null, image: c.image}));
    this.print(this.json, removed, list => list.map(c => `${c.name ?? c.id}\n`).join(''));
    return 0;
  }
}
