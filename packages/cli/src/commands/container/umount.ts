import {Command, Option} from 'clipanion';
import {BaseCommand} from '../BaseCommand.js';

export class UmountCommand extends BaseCommand {
  static override paths = [['umount']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'unmount a mounted container',
    details: 'Unmounts the container\'s overlay and its metadata image. Refused while a process runs in it (`strata run`) or still uses files in the mount. Unmounting a container that is not mounted does nothing.',
    examples: [['Unmount a container', '$0 umount web']],
  });

  container = Option.String({name: 'CONTAINER'});

  async run(): Promise<number> {
    const {resolveContainer, unmountContainer} = await import('@strata/union');
    const store = await this.openStore();
    const c = await resolveContainer(store, this.container);
    if (!unmountContainer(store, c)) this.context.stderr.write(`strata: ${c.name ?? c.id.slice(0, 12)} was not mounted\n`);
    return 0;
  }
}
