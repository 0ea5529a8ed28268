import {Command, Option} from 'clipanion';
import type {ContainerRecord} from '@strata/store';
import {BaseCommand} from '../BaseCommand.js';

export class RmCommand extends BaseCommand {
  static override paths = [['rm']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'remove containers',
    details: 'Removes each CONTAINER (a name, an id or a unique id prefix) with its writable layer; its changes are lost unless committed. Every argument is resolved first: if one is unknown, or one is mounted (without --force), nothing is removed. With --force, a running process is killed and the container unmounted first. The image stays.',
    examples: [
      ['Remove a container', '$0 rm web'],
      ['Remove two containers', '$0 rm web 3f9a1c'],
    ],
  });

  containers = Option.Rest({name: 'CONTAINER', required: 1});
  force = Option.Boolean('-f,--force', false, {description: 'also remove mounted containers (killing a process that runs in one)'});
  json = Option.Boolean('--json', false, {description: 'print [{id, name, image}] of the removed containers as JSON'});

  async run(): Promise<number> {
    const {findContainerMount, resolveContainer, UnionError} = await import('@strata/union');
    const {containerLayers} = await import('../../layers.js');
    const store = await this.openStore();
    const found = new Map<string, ContainerRecord>();
    for (const ref of this.containers) {
      const c = await resolveContainer(store, ref);
      const mounted = !this.force && findContainerMount(store, c.id);
      if (mounted)
        throw new UnionError('MOUNTED', `container ${c.name ?? c.id.slice(0, 12)} is mounted at ${mounted.mountPoint}; "strata umount" it first, or rm --force`);
      found.set(c.id, c);
    }
    const layers = await containerLayers(store);
    for (const c of found.values()) await layers.remove(c, {force: this.force});
    const removed = [...found.values()].map(c => ({id: c.id, name: c.name ?? null, image: c.image}));
    this.print(this.json, removed, list => list.map(c => `${c.name ?? c.id}\n`).join(''));
    return 0;
  }
}
