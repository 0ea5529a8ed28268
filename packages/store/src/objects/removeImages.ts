import {StoreError} from '../errors.js';
import type {Digest} from './digest.js';
import {type TagRef, parseTag} from './refs.js';
import type {Store} from './Store.js';

/** What removing one image did. */
export interface RemovedImage {
  readonly image: Digest;
  /** Tags that no longer exist. */
  readonly untagged: readonly TagRef[];
  /** False when only tags went and the image keeps others. */
  readonly deleted: boolean;
}

/**
 * Removes images by reference, as `docker rmi`: a tag of an image that has other tags
 * only untags; otherwise (and always for an id) the image record goes with all its tags.
 * Every reference is resolved and checked first, so a refused removal removes nothing:
 * an image a container uses is never deleted (IN_USE), since the container's view and
 * commit need its record. Layers and blobs stay until gc. Throws UNKNOWN_IMAGE,
 * AMBIGUOUS_ID, IN_USE.
 */
export async function removeImages(store: Store, refs: readonly string[]): Promise<RemovedImage[]> {
  // Checks and removals at one moment: no container can take an image between them.
  return store.index.exclusive(() => planAndRemove(store, refs));
}

async function planAndRemove(store: Store, refs: readonly string[]): Promise<RemovedImage[]> {
  const tags = await store.listTags();
  const containers = await store.listContainers();
  const tagsOf = (id: Digest) => tags.filter(t => t.image === id).map(t => t.tag);
  const plan = new Map<Digest, Set<TagRef> | 'all'>();
  for (const ref of refs) {
    const {id} = await store.resolveImage(ref);
    const asTag = tagsOf(id).find(t => t === tagOrUndefined(ref));
    const wanted = plan.get(id);
    plan.set(id, asTag && wanted !== 'all' ? new Set([...(wanted ?? []), asTag]) : 'all');
    const user = containers.find(c => c.image === id);
    if (user && deletes(plan.get(id)!, tagsOf(id)))
      throw new StoreError('IN_USE', `image ${ref} is used by container ${user.name ?? user.id}; remove the container first`);
  }
  const removed: RemovedImage[] = [];
  for (const [id, wanted] of plan) {
    if (wanted !== 'all' && !deletes(wanted, tagsOf(id))) {
      for (const t of wanted) await store.deleteTag(t);
      removed.push({image: id, untagged: [...wanted].sort(), deleted: false});
    } else {
      removed.push({image: id, untagged: (await store.deleteImage(id)).sort(), deleted: true});
    }
  }
  return removed;
}

/** Whether removing these tags (or 'all') leaves the image without a tag, so it goes. */
function deletes(wanted: Set<TagRef> | 'all', tagsOf: readonly TagRef[]): boolean {
  return wanted === 'all' || tagsOf.every(t => wanted.has(t));
}

function tagOrUndefined(ref: string): TagRef | undefined {
  try {
    return parseTag(ref);
  } catch {
    return undefined;
  }
}
