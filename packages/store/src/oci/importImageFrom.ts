import * as fs from 'node:fs/promises';
import {importDockerArchive} from './dockerArchive.js';
import {StoreError, sourceError} from '../errors.js';
import type {ImageImportOptions, ImportedImage} from './importImage.js';
import {importOciLayout} from './ociLayout.js';
import type {Store} from '../objects/Store.js';

/**
 * Imports the images of an OCI image layout (a directory) or a `docker save` archive (a
 * file, plain or compressed). Throws SOURCE_MISSING and the importers' codes.
 */
export async function importImageFrom(store: Store, source: string, options: ImageImportOptions = {}): Promise<{format: 'oci' | 'docker'; images: ImportedImage[]}> {
  const st = await fs.stat(source).catch(err => { throw sourceError(err, source); });
  if (st.isDirectory()) return {format: 'oci', images: await importOciLayout(store, source, options)};
  if (st.isFile()) return {format: 'docker', images: await importDockerArchive(store, source, options)};
  throw new StoreError('SOURCE_MISSING', `${source} is neither an OCI image layout directory nor a docker archive file`);
}
