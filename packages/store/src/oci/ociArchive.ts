import {createReadStream, createWriteStream} from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {pipeline} from 'node:stream/promises';
import * as tar from 'tar-stream';
import type {Image} from '../objects/image.js';
import type {Store} from '../objects/Store.js';
import {eachArchiveMember} from './archiveMembers.js';
import {type ExportedImage, type ImageExportOptions, checkTarget, exportOciLayout} from './ociLayout.js';

/** The members of an OCI archive strata needs: the layout marker, the index, and blobs named by sha256. */
const LAYOUT_MEMBER = /^(?:oci-layout|index\.json|blobs\/sha256\/[0-9a-f]{64})$/;

/**
 * Writes the OCI image layout held in an archive (`podman save --format oci-archive`,
 * `skopeo copy oci-archive:`: a tar of `oci-layout`, `index.json` and `blobs/`) into the
 * empty directory `into`, so the layout importer (every digest checked) reads it. Only
 * regular members with exactly those names are written, each under a name made here, so
 * a member cannot place a file anywhere else; links and other members are skipped (a blob
 * that was a link is then reported missing by the importer). Throws BAD_ARCHIVE, SOURCE_MISSING.
 */
export async function extractOciArchive(file: string, into: string): Promise<void> {
  await fs.mkdir(path.join(into, 'blobs', 'sha256'), {recursive: true});
  await eachArchiveMember(file, async (name, header, body) => {
    if ((header.type === 'file' || header.type === 'contiguous-file') && LAYOUT_MEMBER.test(name))
      await pipeline(body, createWriteStream(path.join(into, ...name.split('/')), {flags: 'w', mode: 0o600}));
  });
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
