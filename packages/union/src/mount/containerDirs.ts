import * as fs from 'node:fs';
import * as path from 'node:path';
import type {Store} from '@strata/store';

/** The directories of a container: upper (its layer), work (overlayfs's), meta (the metadata image's mount), rootfs (the default mount point). */
export function containerDirs(store: Store, id: string): {store: string; upper: string; work: string; meta: string; rootfs: string} {
  const real = fs.realpathSync(store.dir);
  const base = path.join(real, 'containers', id);
  return {store: real, upper: path.join(base, 'upper'), work: path.join(base, 'work'), meta: path.join(base, 'meta'), rootfs: path.join(base, 'rootfs')};
}
