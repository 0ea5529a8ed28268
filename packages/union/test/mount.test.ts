import test from 'ava';
import {ContainerLayers} from '../src/ContainerLayers.js';
import {openContainerView} from '../src/containers.js';
import {mountContainer, unmountContainer} from '../src/mount/mountContainer.js';
import {containerFrom, strataSubject} from './_helpers.js';
import {layerSuite} from './_layerSuite.js';
import {mkfsMetaImage} from '../src/mount/mkfsMetaImage.js';
import {chrootedSubject, requireOverlay} from './_overlay.js';

// The union rules over strata's own kernel mount of a container (the metadata image of the
// image's merged tree, the store's objects as a data-only lower, the container's upper),
// the steps done by a process chrooted into it, as the kernel subject does them.
layerSuite(test, 'strata mount', async (t, layers) => {
  requireOverlay();
  const {store, container} = await containerFrom(t, layers);
  const mount = await mountContainer(new ContainerLayers(store, mkfsMetaImage), container);
  return chrootedSubject(t, 'strata mount', mount.mountPoint, () => { unmountContainer(store, container); });
});

// The strata view of a mounted container: reads through the upper and the image, writes
// through the mount (the kernel owns the upper while it is mounted).
layerSuite(test, 'strata view through its mount', async (t, layers) => {
  requireOverlay();
  const {store, container} = await containerFrom(t, layers);
  await mountContainer(new ContainerLayers(store, mkfsMetaImage), container);
  const view = await openContainerView(store, container);
  t.teardown(async () => {
    await view.close();
    unmountContainer(store, container);
  });
  if (!view.mounted) throw new Error('the view of a mounted container must write through the mount');
  return strataSubject(view);
});
