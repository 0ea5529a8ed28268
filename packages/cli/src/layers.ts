import type {Store} from '@strata/store';
import type {ContainerLayers} from '@strata/union';

/** The store's container layers, with the metadata image builder that kernel mounts need. */
export async function containerLayers(store: Store): Promise<ContainerLayers> {
  const union = await import('@strata/union');
  return new union.ContainerLayers(store, union.mkfsMetaImage);
}
