import {type Digest, type Image, type Platform, type Store, type TagRef} from '@strata/store';
import {flattenLayers} from './flatten.js';

export interface StackOptions {
  /** The image underneath: its layers go below, its config and platform carry over. */
  readonly base?: Image;
  /** The platform of an image without a base (one with a base keeps the base's). */
  readonly platform?: Platform;
  /** What made the layer, for the history: `strata import`, `strata commit`. */
  readonly createdBy: string;
  /** The history entry's comment (`--message`). */
  readonly comment?: string;
  readonly tag?: TagRef;
}

/**
 * Stores the image made of `base`'s layers plus `layer` on top: the base's config, with
 * one more history entry and no timestamp in it (so the same stacking gives the same
 * image id), tagged `tag` if given. Flattens the new stack at once, so that creating a
 * container of it costs a record and an empty directory. Throws UNKNOWN_LAYER when a
 * layer is missing (putImage's check).
 */
export async function stackImage(store: Store, layer: Digest, options: StackOptions): Promise<{id: Digest; image: Image}> {
  const {base} = options;
  const platform = base ? base.platform : options.platform;
  const image: Image = {
    layers: [...(base?.layers ?? []), layer],
    config: {
      ...base?.config,
      history: [...(base?.config.history ?? []), {createdBy: options.createdBy, ...(options.comment !== undefined ? {comment: options.comment} : {})}],
    },
    ...(platform ? {platform} : {}),
  };
  const id = await store.putImage(image, options.tag);
  await flattenLayers(store, image.layers);
  return {id, image};
}
