import {StoreError, type ContainerRecord, type Digest, type ImportResult, type Store, type TagRef, importDirectory} from '@strata/store';
import {stackImage} from './stackImage.js';

export interface CommitResult extends ImportResult {
  /** The new image: the container's image layers plus the new layer. */
  readonly image: Digest;
}

/**
 * Freezes a container's writable layer into a read-only layer (whiteouts and opaque
 * markers kept) and stores the image = its image's layers + that layer, tagged with
 * `tag` if given. The same changes give the same layer id. Reads only the writable
 * layer, so the cost is proportional to the changes. The container keeps running on
 * its old image.
 */
export async function commitContainer(store: Store, c: ContainerRecord, options: {tag?: TagRef; message?: string} = {}): Promise<CommitResult> {
  const base = await store.getImage(c.image);
  // A record naming a missing image is damage in the store (exit 3), not a bug.
  if (!base) throw new StoreError('OBJECT_MISSING', `container ${c.name ?? c.id} is based on image ${c.image}, which is missing; "strata verify" says more`);
  const result = await importDirectory(store, store.upperDir(c.id), {
    upper: store.upper,
    allowMissing: true,
    source: `commit of container ${c.name ?? c.id}`,
  });
  // The platform stays the image's: a container's changes are for the platform it runs.
  const {id} = await stackImage(store, result.layer.id, {
    base, createdBy: 'strata commit', ...(options.message ? {comment: options.message} : {}), ...(options.tag ? {tag: options.tag} : {}),
  });
  return {...result, image: id};
}
