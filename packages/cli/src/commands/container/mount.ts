import {Command, Option} from 'clipanion';
import {BaseCommand} from '../BaseCommand.js';

export class MountCommand extends BaseCommand {
  static override paths = [['mount']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'mount a container as a kernel overlayfs and print the mount point',
    details: `
      Mounts the image's metadata image (EROFS, built once per image and kept) read-only, and kernel overlayfs over it with the store's objects as a data-only layer and the container's writable layer on top: any program can then use the directory as the container's root filesystem. No file data is copied. Prints the mount point (DIR, by default a directory in the store). Mounting a mounted container prints where it is.

      While a container is mounted, strata's own commands write through the mount. Needs root, erofs and overlayfs with data-only lower layers (Linux 6.5 or later); without them strata says what is missing.
    `,
    examples: [
      ['Mount a container where strata keeps it', '$0 mount web'],
      ['Mount a container on a directory of your choice', '$0 mount web /mnt/web'],
    ],
  });

  container = Option.String({name: 'CONTAINER'});
  dir = Option.String({name: 'DIR', required: false});
  json = Option.Boolean('--json', false, {description: 'print {id, name, mountPoint} as JSON'});

  async run(): Promise<number> {
    const {mountContainer, resolveContainer} = await import('@strata/union');
    const {containerLayers} = await import('../../layers.js');
    const store = await this.openStore();
    const c = await resolveContainer(store, this.container);
    const m = await mountContainer(await containerLayers(store), c, this.dir);
    this.print(this.json, {id: c.id, name: c.name ?? null, mountPoint: m.mountPoint}, r => `${r.mountPoint}\n`);
    return 0;
  }
}
