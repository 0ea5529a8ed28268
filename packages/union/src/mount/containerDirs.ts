import * as fs from 'node:fs';
import * as path from 'node:path';
import type {Store} from '@strata/store';

/**
 * The directories of a container: upper (its layer), work (overlayfs's), meta (the metadata
 * image's mount), pack(i) (the mount of the i-th small-blob pack its image needs), rootfs
 * (the default mount point).
 */
export function containerDirs(store: Store, id: string): {store: string; base: string; upper: string; work: string; meta: string; pack: (i: number) => string; rootfs: string} {
  const real = fs.realpathSync(store.dir);
  const base = path.join(real, 'containers', id);
  return {
    store: real, base, upper: path.join(base, 'upper'), work: path.join(base, 'work'), meta: path.join(base, 'meta'),
    pack: i => path.join(base, `pack${i}`), rootfs: path.join(base, 'rootfs'),
  };
}

/** Whether `mountPoint` is one of a container's read-only lower mounts (its metadata image or a pack), given its `containerDirs`. */
export function isLowerMount(dirs: {base: string; meta: string}, mountPoint: string): boolean {
  return mountPoint === dirs.meta || (path.dirname(mountPoint) === dirs.base && /^pack\d+$/.test(path.basename(mountPoint)));
}
