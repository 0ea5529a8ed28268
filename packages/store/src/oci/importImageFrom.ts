import {createWriteStream} from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type {Readable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import {RegistryError, parseImageRef} from '@strata/registry';
import {importDockerArchive, scanArchive} from './dockerArchive.js';
import {StoreError, rethrowNoSpace, sourceError} from '../errors.js';
import type {ImageImportOptions, ImportedImage} from './importImage.js';
import {extractOciArchive} from './ociArchive.js';
import {importOciLayout} from './ociLayout.js';
import type {Store} from '../objects/Store.js';

/** What an image import read: an OCI layout directory, an OCI archive, or a docker archive. */
export type ImageSourceFormat = 'oci' | 'oci-archive' | 'docker';

/**
 * Imports the images of a source named as skopeo names it (`oci:DIR[:REF]`: one image of
 * a layout, or all; `oci-archive:FILE[:REF]`; `docker-archive:FILE[:NAME:TAG]`), or of a
 * plain path: an OCI image layout (a directory), an OCI archive (a tar holding
 * `oci-layout` and `index.json`) or a `docker save` archive (a tar holding manifest.json);
 * archives may be plain, gzip, zstd, xz or bzip2. An archive with both (docker 25 writes
 * both) is read as a docker archive. Throws SOURCE_MISSING, BAD_MANIFEST, BAD_REFERENCE (a `docker://` source: that is a pull) and the importers' codes.
 */
export async function importImageFrom(store: Store, source: string, options: ImageImportOptions = {}): Promise<{format: ImageSourceFormat; images: ImportedImage[]}> {
  // A source may name its format as skopeo does: oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG].
  let ref;
  try {
    ref = parseImageRef(source, 'path');
  } catch (err) {
    if (err instanceof RegistryError) throw new StoreError('BAD_REFERENCE', err.message, {cause: err});
    throw err;
  }
  if (ref?.transport === 'docker') throw new StoreError('BAD_REFERENCE', `"${source}" is in a registry: "strata pull ${source}" fetches it`);
  if (ref) {
    const selected = ref.ref !== undefined ? {...options, ref: ref.ref} : options;
    const file = ref.path;
    await fs.stat(file).catch(err => { throw sourceError(err, file); });
    if (ref.transport === 'oci') return {format: 'oci', images: await importOciLayout(store, file, selected)};
    if (ref.transport === 'docker-archive') return {format: 'docker', images: await importDockerArchive(store, file, selected)};
    const name = path.basename(file).replace(/\.(tar|tgz|tzst)(\.\w+)?$/, '');
    return {format: 'oci-archive', images: await viaDirectory(store, 'oci-archive', dir => extractOciArchive(file, dir), dir => importOciLayout(store, dir, {...selected, layoutName: options.layoutName !== undefined ? options.layoutName : name}))};
  }
  const st = await fs.stat(source).catch(err => { throw sourceError(err, source); });
  if (st.isDirectory()) return {format: 'oci', images: await importOciLayout(store, source, options)};
  if (!st.isFile()) throw new StoreError('SOURCE_MISSING', `${source} is neither an OCI image layout directory nor an archive file`);
  const scan = await scanArchive(source);
  if (scan.json.has('manifest.json')) return {format: 'docker', images: await importDockerArchive(store, source, options, scan)};
  if (scan.members.has('oci-layout') && scan.members.has('index.json')) {
    // Bare ref names (`latest`) take the archive's name, as they take a layout directory's.
    const name = path.basename(source).replace(/\.(tar|tgz|tzst)(\.\w+)?$/, '');
    return {format: 'oci-archive', images: await viaDirectory(store, 'oci-archive', dir => extractOciArchive(source, dir), dir => importOciLayout(store, dir, {...options, layoutName: options.layoutName !== undefined ? options.layoutName : name}))};
  }
  throw new StoreError('BAD_MANIFEST', `${source} is neither a docker archive (it has no manifest.json) nor an OCI archive (it has no oci-layout and index.json)`);
}

/**
 * Imports an image archive read from a stream (`podman save IMAGE | strata image import -`):
 * it is spooled to a temporary file in the store (an archive is read in two passes), then
 * imported as a file; the file is removed either way. Bare ref names need `tag`, since a
 * stream has no name to give them.
 */
export async function importImageStream(store: Store, input: Readable, options: ImageImportOptions = {}): Promise<{format: ImageSourceFormat; images: ImportedImage[]}> {
  const file = store.tmpPath('stdin');
  try {
    await pipeline(input, createWriteStream(file, {flags: 'wx', mode: 0o600})).catch(err => rethrowNoSpace(err, 'the archive read from standard input'));
    return await importImageFrom(store, file, {...options, layoutName: options.layoutName ?? null});
  } finally {
    await fs.rm(file, {force: true});
  }
}

/** Runs `fill` then `use` on a fresh temporary directory in the store, removed afterwards. */
async function viaDirectory<T>(store: Store, label: string, fill: (dir: string) => Promise<void>, use: (dir: string) => Promise<T>): Promise<T> {
  const dir = store.tmpPath(label);
  try {
    await fill(dir);
    return await use(dir);
  } finally {
    await fs.rm(dir, {recursive: true, force: true});
  }
}
