import {createReadStream, createWriteStream} from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {pipeline} from 'node:stream/promises';
import * as tar from 'tar-stream';
import {StoreError, sourceError} from '../errors.js';
import type {Image} from '../objects/image.js';
import type {Store} from '../objects/Store.js';
import type {ImageImportOptions, ImportedImage} from './importImage.js';
import {type ExportedImage, type ImageExportOptions, checkTarget, exportOciLayout, importOciLayout} from './ociLayout.js';

/**
 * Imports an `oci-archive:` file: a tar of an OCI image layout (what skopeo and podman
 * write). Its regular files and directories are unpacked into the store's tmp/ (names
 * checked: nothing absolute, no `..`, no links), imported as a layout, and removed.
 * Throws SOURCE_MISSING, BAD_ARCHIVE, UNSAFE_PATH and the layout importer's codes.
 */
export async function importOciArchive(store: Store, file: string, options: ImageImportOptions = {}): Promise<ImportedImage[]> {
  await fs.stat(file).catch(err => { throw sourceError(err, file); });
  const dir = store.tmpPath('oci-archive');
  await fs.mkdir(dir);
  try {
    const extract = tar.extract();
    extract.on('entry', (header, body, next) => {
      const name = path.posix.normalize(header.name).replace(/^\.\/?/, '').replace(/\/$/, '');
      if (name === '' && header.type === 'directory') { body.resume(); next(); return; }
      if (name.startsWith('/') || name === '..' || name.startsWith('../')) {
        body.resume();
        next(new StoreError('UNSAFE_PATH', `${file} has a member "${header.name}" outside the layout`));
        return;
      }
      const target = path.join(dir, name);
      if (header.type === 'directory') {
        fs.mkdir(target, {recursive: true}).then(() => { body.resume(); next(); }, next);
      } else if (header.type === 'file') {
        fs.mkdir(path.dirname(target), {recursive: true})
          .then(() => pipeline(body, createWriteStream(target, {flags: 'wx'})))
          .then(() => next(), next);
      } else {
        body.resume(); // links and devices have no place in a layout
        next();
      }
    });
    await pipeline(createReadStream(file), extract).catch(err => {
      if (err instanceof StoreError) throw err;
      throw new StoreError('BAD_ARCHIVE', `${file} is not a tar of an OCI image layout (${(err as Error).message})`, {cause: err});
    });
    return await importOciLayout(store, dir, options);
  } finally {
    await fs.rm(dir, {recursive: true, force: true});
  }
}

/**
 * Writes an image as an `oci-archive:` file: the OCI layout `exportOciLayout` writes, as a
 * tar with its members in a fixed order and fixed metadata, so the same image gives the
 * same bytes. Written beside `file` and renamed. Throws TARGET_EXISTS and the exporter's codes.
 */
export async function exportOciArchive(store: Store, image: Image, file: string, options: ImageExportOptions = {}): Promise<ExportedImage> {
  file = path.resolve(file);
  await checkTarget(file, false);
  const dir = store.tmpPath('oci-archive');
  const partial = `${file}.strata-partial`;
  try {
    const exported = await exportOciLayout(store, image, dir, options);
    const pack = tar.pack();
    const writing = pipeline(pack, createWriteStream(partial, {flags: 'wx'}));
    const add = async (rel: string): Promise<void> => {
      const abs = path.join(dir, rel);
      const st = await fs.stat(abs);
      const meta = {mode: st.isDirectory() ? 0o755 : 0o644, uid: 0, gid: 0, mtime: new Date(0), uname: '', gname: ''};
      if (st.isDirectory()) {
        if (rel !== '') await new Promise<void>((resolve, reject) => pack.entry({name: `${rel}/`, type: 'directory', ...meta}, err => (err ? reject(err) : resolve())));
        for (const name of (await fs.readdir(abs)).sort()) await add(rel === '' ? name : `${rel}/${name}`);
        return;
      }
      await new Promise<void>((resolve, reject) => {
        const sink = pack.entry({name: rel, type: 'file', size: st.size, ...meta}, err => (err ? reject(err) : resolve()));
        createReadStream(abs).on('error', reject).pipe(sink as unknown as NodeJS.WritableStream);
      });
    };
    await add('');
    pack.finalize();
    await writing;
    await fs.rename(partial, file);
    return {...exported, path: file};
  } catch (err) {
    await fs.rm(partial, {force: true});
    throw err;
  } finally {
    await fs.rm(dir, {recursive: true, force: true});
  }
}
