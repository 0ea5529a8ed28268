import * as fs from 'node:fs';
import * as path from 'node:path';
import type {ContainerRecord, Digest, Store, TagRef} from '@strata/store';
import {type CommitResult, commitContainer} from './commit.js';
import {createContainer, imageRoot, openContainerView, removeContainer} from './containers.js';
import {UnionError} from './errors.js';
import type {Mount} from './mount/kernelMount.js';
import {type ContainerMount, findContainerMount, unmountContainer} from './mount/mountContainer.js';
import {containerDirs} from './mount/containerDirs.js';
import type {UnionView} from './UnionView.js';
import type {LayerUsage, WritableLayers} from './WritableLayers.js';

/**
 * Builds (once, memoised by the tree's digest) the EROFS metadata image of a merged tree;
 * returns its path and the small-blob packs (EROFS image files) its redirects need besides
 * the store's objects/.
 */
export type MetaImageBuilder = (store: Store, tree: Digest) => Promise<{path: string; packs: readonly string[]}>;

/** mount(2) takes at most a page of options (with the terminating NUL). */
const MOUNT_OPTIONS_MAX = 4095;

/**
 * The writable layers of one store's containers: userspace uppers in the store, served
 * by the kernel through `mountContainer`. See `WritableLayers` for the lifecycle.
 */
export class ContainerLayers implements WritableLayers {
  constructor(readonly store: Store, readonly metaImage?: MetaImageBuilder) {}

  prepare(image: string, options: {name?: string} = {}): Promise<ContainerRecord> {
    return createContainer(this.store, {image, ...(options.name !== undefined ? {name: options.name} : {})});
  }

  /** The container's view; while it is mounted, its writes go through the mount. */
  async view(c: ContainerRecord): Promise<UnionView> {
    return openContainerView(this.store, c);
  }

  /** Where the container is mounted now, read from /proc/self/mountinfo; undefined when it is not. */
  mounted(c: ContainerRecord): ContainerMount | undefined {
    return findContainerMount(this.store, c.id);
  }

  /**
   * The metadata image and the small-blob packs it needs (erofs, read-only), then overlayfs
   * over them and the objects at `target`: `lowerdir=META::OBJECTS::PACK0::PACK1…`, the
   * objects and packs as data-only lowers, in which overlayfs looks each redirect up in
   * turn (a `/b3/…` redirect is found in the objects, a `/small/…` one in a pack). `volatile`: overlayfs's `volatile`, for a container that is removed after
   * this mount (`run --rm`, as podman does): no sync of the upper, so an unmount does not
   * wait for the whole upper filesystem's dirty data (~50–100 ms on a busy disk). The
   * kernel then marks the work dir, and refuses to mount that upper again.
   */
  async mounts(c: ContainerRecord, target: string, options: {volatile?: boolean} = {}): Promise<Mount[]> {
    if (!this.metaImage) throw new UnionError('NO_KERNEL_MOUNT', 'this strata has no metadata image builder, so containers cannot be mounted');
    const dirs = containerDirs(this.store, c.id);
    const image = await this.metaImage(this.store, await imageRoot(this.store, c.image));
    const packs = image.packs.map((file, i) => ({type: 'erofs' as const, source: file, target: dirs.pack(i), options: ['ro']}));
    const overlayOptions = [
      `lowerdir=${[dirs.meta, path.join(dirs.store, 'objects'), ...packs.map(p => p.target)].join('::')}`, `upperdir=${dirs.upper}`, `workdir=${dirs.work}`,
      // Directory renames give EXDEV rather than redirects, and copy-up copies whole files:
      // the upper stays a plain layer (research/mounts.md §1.3). Data-only lowers follow
      // the metadata image's file redirects even so.
      'redirect_dir=nofollow', 'index=off', 'metacopy=off',
      ...(this.store.upper.userxattr ? ['userxattr'] : []),
      ...(options.volatile ? ['volatile'] : []),
    ];
    for (const p of [image.path, dirs.meta, dirs.store, dirs.upper, dirs.work, target])
      if (/[,:\\]/.test(p)) throw new UnionError('MOUNT_FAILED', `${p}: overlayfs options cannot name a path with ",", ":" or "\\"`);
    if (overlayOptions.join(',').length > MOUNT_OPTIONS_MAX)
      throw new UnionError('MOUNT_FAILED', `the overlay mount's options take more than ${MOUNT_OPTIONS_MAX} bytes (the store's path is ${dirs.store.length} bytes long)`);
    return [
      {type: 'erofs', source: image.path, target: dirs.meta, options: ['ro']},
      ...packs,
      {type: 'overlay', source: 'overlay', target, options: overlayOptions},
    ];
  }

  commit(c: ContainerRecord, options: {tag?: TagRef; message?: string} = {}): Promise<CommitResult> {
    return commitContainer(this.store, c, options);
  }

  /** Removes the container; a mounted one only with `force`, which unmounts it first. Throws MOUNTED, RUNNING. */
  async remove(c: ContainerRecord, options: {force?: boolean} = {}): Promise<void> {
    const mounted = this.mounted(c);
    if (mounted && !options.force)
      throw new UnionError('MOUNTED', `container ${c.name ?? c.id.slice(0, 12)} is mounted at ${mounted.mountPoint}; "strata umount" it first, or rm --force`);
    if (mounted) unmountContainer(this.store, c, {force: true});
    await removeContainer(this.store, c.id);
  }

  async usage(c: ContainerRecord): Promise<LayerUsage> {
    let bytes = 0, entries = 0;
    const seen = new Set<number>();
    const walk = (dir: string) => {
      for (const d of fs.readdirSync(dir, {withFileTypes: true})) {
        const p = path.join(dir, d.name);
        entries++;
        if (d.isDirectory()) walk(p);
        else if (d.isFile()) {
          const st = fs.lstatSync(p);
          if (st.nlink > 1 && seen.has(st.ino)) continue;
          seen.add(st.ino);
          bytes += st.size;
        }
      }
    };
    const upper = this.store.upperDir(c.id);
    if (fs.existsSync(upper)) walk(upper);
    return {bytes, entries};
  }
}

