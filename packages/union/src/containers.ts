import * as fs from 'node:fs';
import * as path from 'node:path';
import {type ContainerRecord, type Digest, type Store, StoreError, setRecordedOwner, randomHex} from '@strata/store';
import {UnionError} from './errors.js';
import {flattenLayers} from './flatten.js';
import {findContainerMount} from './mount/mountContainer.js';
import {MountWriter} from './mount/MountWriter.js';
import {UnionView} from './UnionView.js';

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

/**
 * Creates a container: an empty writable layer (a directory in the store) and a record
 * that references the image. Nothing of the image is copied; its merged lower tree is
 * memoised per image, so creating costs the same for any image size (after the first
 * container of an image that was never flattened). The record is the commit point.
 * Throws UNKNOWN_IMAGE, BAD_NAME, NAME_TAKEN.
 */
export async function createContainer(store: Store, options: {image: string; name?: string}): Promise<ContainerRecord> {
  if (options.name !== undefined) {
    if (!NAME_RE.test(options.name))
      throw new UnionError('BAD_NAME', `"${options.name}" is not a valid container name (letters, digits, _ . -; at most 128)`);
    if (await store.containerIdByName(options.name))
      throw new UnionError('NAME_TAKEN', `the name "${options.name}" is already used by a container`);
  }
  const {id: imageId, image} = await store.resolveImage(options.image);
  const lowerRoot = await flattenLayers(store, image.layers);
  const id = randomHex(16);
  const upper = store.upperDir(id);
  fs.mkdirSync(upper, {recursive: true});
  // The upper's root starts as the image's root, so an unchanged container diffs empty.
  const root = await store.getTreeMeta(lowerRoot);
  setRecordedOwner(upper, fs.statSync(upper), root.uid, root.gid, {fresh: true});
  fs.chmodSync(upper, root.mode);
  fs.utimesSync(upper, root.mtime, root.mtime);
  const record: ContainerRecord = {id, image: imageId, created: new Date().toISOString(), ...(options.name ? {name: options.name} : {})};
  try {
    await store.putContainer(record);
  } catch (err) {
    fs.rmSync(path.dirname(upper), {recursive: true, force: true});
    throw err;
  }
  return record;
}

/** Finds a container by name, full id, or unique id prefix. Throws UNKNOWN_CONTAINER, AMBIGUOUS_ID. */
export async function resolveContainer(store: Store, ref: string): Promise<ContainerRecord> {
  const byName = await store.containerIdByName(ref);
  const exact = await store.getContainer(byName ?? ref);
  if (exact) return exact;
  if (/^[0-9a-f]{1,32}$/.test(ref)) {
    const matches = (await store.listContainers()).filter(c => c.id.startsWith(ref));
    if (matches.length > 1) throw new UnionError('AMBIGUOUS_ID', `"${ref}" matches more than one container; give more digits`);
    if (matches[0]) return matches[0];
  }
  throw new UnionError('UNKNOWN_CONTAINER', `there is no container "${ref}"`);
}

/** Removes a container's record, then its writable layer. Its image stays. */
export async function removeContainer(store: Store, ref: string): Promise<ContainerRecord> {
  const c = await resolveContainer(store, ref);
  await store.deleteContainer(c);
  return c;
}

/** The merged lower tree of an image (memoised). */
export async function imageRoot(store: Store, imageId: Digest): Promise<Digest> {
  const image = await store.getImage(imageId);
  if (!image) throw new StoreError('UNKNOWN_IMAGE', `there is no image ${imageId}`);
  return flattenLayers(store, image.layers);
}

/**
 * A container's view: its writable layer over its image. While the container is mounted
 * (as /proc/self/mountinfo says now), its writes go through the mount.
 */
export async function openContainerView(store: Store, c: ContainerRecord): Promise<UnionView> {
  if (!(await store.getImage(c.image)))
    throw new StoreError('OBJECT_MISSING', `container ${c.name ?? c.id} is based on image ${c.image}, which is missing; "strata verify" says more`);
  const mounted = findContainerMount(store, c.id);
  return UnionView.open(store, await imageRoot(store, c.image), store.upperDir(c.id), mounted && new MountWriter(mounted.mountPoint));
}

/** A read-only view of an image. */
export async function openImageView(store: Store, imageId: Digest): Promise<UnionView> {
  return UnionView.open(store, await imageRoot(store, imageId));
}

/** What a name given on the command line denotes: a container (first) or an image. */
export type ResolvedView =
  | {readonly kind: 'container'; readonly container: ContainerRecord; readonly view: UnionView}
  | {readonly kind: 'image'; readonly image: Digest; readonly view: UnionView};

/** Resolves a container name/id or an image tag/id to its view. Throws UNKNOWN_VIEW naming both tries. */
export async function resolveView(store: Store, ref: string): Promise<ResolvedView> {
  try {
    const container = await resolveContainer(store, ref);
    return {kind: 'container', container, view: await openContainerView(store, container)};
  } catch (err) {
    if (!(err instanceof UnionError && err.code === 'UNKNOWN_CONTAINER')) throw err;
  }
  try {
    const {id} = await store.resolveImage(ref);
    return {kind: 'image', image: id, view: await openImageView(store, id)};
  } catch (err) {
    // A ref that is no tag may still have been meant as a container name: say both were tried.
    if (err instanceof StoreError && (err.code === 'UNKNOWN_IMAGE' || err.code === 'BAD_REFERENCE'))
      throw new UnionError('UNKNOWN_VIEW', `there is no container or image "${ref}"`, {}, {cause: err});
    throw err;
  }
}
