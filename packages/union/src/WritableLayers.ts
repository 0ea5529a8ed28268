import type {ContainerRecord, TagRef} from '@strata/store';
import type {CommitResult} from './commit.js';
import type {Mount} from './mount/kernelMount.js';
import type {UnionView} from './UnionView.js';

/** What a container's writable layer holds on disk. */
export interface LayerUsage {
  /** Bytes of the regular files in the upper (hardlinked files once). */
  readonly bytes: number;
  /** Entries in the upper: files, directories, links, whiteouts. */
  readonly entries: number;
}

/**
 * A container's writable layer over an image's merged tree, and the container's
 * lifecycle. The terms are containerd's Snapshotter's:
 *
 * - `prepare` makes an *active* layer over a committed parent (an image): a record and an
 *   empty upper directory, O(1) whatever the image's size.
 * - `view` is how strata's own commands read and write it (the union rules of
 *   union-semantics.md, in `UnionView`). Reading always goes through the upper and the
 *   image's merged tree; while the container is mounted, every write goes through the
 *   kernel mount (the kernel owns the upper then: overlayfs forbids changes behind its back).
 * - `mounts` says how the kernel serves it: an EROFS metadata image of the merged tree,
 *   read-only, and overlayfs with that image and the store's `objects/` as lowers
 *   (`lowerdir=META::OBJECTS`, the objects a data-only layer) and the upper on top.
 *   Performing them is `mountContainer`; the live state is always read back from
 *   /proc/self/mountinfo, never from a record. A *volatile* mount (for a container that is
 *   removed afterwards: `run --rm`) skips every sync of the upper, the unmount's included.
 * - `commit` freezes the upper into a read-only layer and an image.
 * - `remove` forgets the container and its upper (refused while it is mounted, unless forced).
 * - `usage` is what its upper takes on disk.
 *
 * The upper's on-disk form (kernel overlayfs: 0/0 whiteout devices, opaque xattrs) is the
 * store's `UpperForm`; nothing else knows it.
 */
export interface WritableLayers {
  prepare(image: string, options?: {name?: string}): Promise<ContainerRecord>;
  view(container: ContainerRecord): Promise<UnionView>;
  mounts(container: ContainerRecord, target: string, options?: {volatile?: boolean}): Promise<Mount[]>;
  commit(container: ContainerRecord, options?: {tag?: TagRef; message?: string}): Promise<CommitResult>;
  remove(container: ContainerRecord, options?: {force?: boolean}): Promise<void>;
  usage(container: ContainerRecord): Promise<LayerUsage>;
}
