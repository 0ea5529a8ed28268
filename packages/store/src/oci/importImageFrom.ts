import * as fs from 'node:fs/promises';
import {RegistryError, parseImageRef} from '@strata/registry';
import {importDockerArchive} from './dockerArchive.js';
import {StoreError, sourceError} from '../errors.js';
import type {ImageImportOptions, ImportedImage} from './importImage.js';
import {importOciArchive} from './ociArchive.js';
import {importOciLayout} from './ociLayout.js';
import type {Store} from '../objects/Store.js';

export type ImageFormat = 'oci' | 'oci-archive' | 'docker';

/**
 * Imports the images of a source named as skopeo names it: `oci:DIR[:REF]` (one image of
 * a layout, or all), `oci-archive:FILE[:REF]`, `docker-archive:FILE[:NAME:TAG]`; or a plain
 * path: an OCI image layout (a directory) or a `docker save` archive (a file, plain or
 * compressed). Throws SOURCE_MISSING, BAD_REFERENCE (a `docker://` source: that is a pull)
 * and the importers' codes.
 */
export async function importImageFrom(store: Store, source: string, options: ImageImportOptions = {}): Promise<{format: ImageFormat; images: ImportedImage[]}> {
  let ref;
  try {
    ref = parseImageRef(source, 'path');
  } catch (err) {
    if (err instanceof RegistryError) throw new StoreError('BAD_REFERENCE', err.message, {cause: err});
    throw err;
  }
  if (ref?.transport === 'docker') throw new StoreError('BAD_REFERENCE', `"${source}" is in a registry: "strata pull ${source}" fetches it`);
  const withRef = ref?.ref !== undefined ? {...options, ref: ref.ref} : options;
  if (ref?.transport === 'oci') return {format: 'oci', images: await importOciLayout(store, ref.path, withRef)};
  if (ref?.transport === 'oci-archive') return {format: 'oci-archive', images: await importOciArchive(store, ref.path, withRef)};
  if (ref?.transport === 'docker-archive') return {format: 'docker', images: await importDockerArchive(store, ref.path, withRef)};
  const st = await fs.stat(source).catch(err => { throw sourceError(err, source); });
  if (st.isDirectory()) return {format: 'oci', images: await importOciLayout(store, source, options)};
  if (st.isFile()) return {format: 'docker', images: await importDockerArchive(store, source, options)};
  throw new StoreError('SOURCE_MISSING', `${source} is neither an OCI image layout directory nor a docker archive file`);
}
