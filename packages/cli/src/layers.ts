import type {Digest, Store} from '@strata/store';
import type {ContainerLayers, MetaImageBuilder} from '@strata/union';

/**
 * The store's container layers, with the builder of metadata images that kernel mounts
 * need: the store's own EROFS writer (`ensureMetaImage`) where this build has it, else
 * the slower mkfs.erofs route (Debian erofs-utils).
 */
export async function containerLayers(store: Store): Promise<ContainerLayers> {
  const [union, storePackage] = await Promise.all([import('@strata/union'), import('@strata/store')]);
  const ensure = (storePackage as {ensureMetaImage?: (s: Store, tree: Digest) => Promise<{path: string; packs: readonly string[]}>}).ensureMetaImage;
  const builder: MetaImageBuilder = ensure ? async (s, tree) => { const {path, packs} = await ensure(s, tree); return {path, packs}; } : union.mkfsMetaImage;
  return new union.ContainerLayers(store, builder);
}
