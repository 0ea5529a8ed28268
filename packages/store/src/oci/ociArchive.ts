import {createWriteStream} from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {Readable} from 'node:stream';
import {finished, pipeline} from 'node:stream/promises';
import * as tar from 'tar-stream';
import {StoreError} from '../errors.js';
import {openTarFile} from '../import/importTar.js';
import {splitLayerPath} from '../import/LayerBuilder.js';

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
  // No await between piping and iterating: tar-stream drops entries no iterator is there to take.
  const input = await openTarFile(file);
  const extract = tar.extract();
  input.on('error', err => extract.destroy(err));
  input.pipe(extract);
  try {
    for await (const entry of extract) {
      const body = Readable.from(entry as AsyncIterable<Buffer>);
      const name = splitLayerPath(entry.header.name).join('/');
      if ((entry.header.type === 'file' || entry.header.type === 'contiguous-file') && LAYOUT_MEMBER.test(name)) {
        await pipeline(body, createWriteStream(path.join(into, ...name.split('/')), {flags: 'w', mode: 0o600}));
      } else {
        body.resume();
        await finished(body);
      }
    }
  } catch (err) {
    extract.destroy();
    input.destroy();
    if (err instanceof StoreError || (err as NodeJS.ErrnoException).syscall) throw err;
    throw new StoreError('BAD_ARCHIVE', `${file} is truncated or corrupt: ${(err as Error).message}`, {cause: err});
  }
}
