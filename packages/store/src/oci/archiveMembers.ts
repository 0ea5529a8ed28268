import {Readable} from 'node:stream';
import {finished} from 'node:stream/promises';
import * as tar from 'tar-stream';
import {StoreError} from '../errors.js';
import {openTarFile} from '../import/importTar.js';
import {splitLayerPath} from '../import/LayerBuilder.js';

/**
 * Streams the members of an image archive (a `docker save` tar, an OCI archive; plain or
 * compressed) to `visit`, names normalised (`./a//b` is `a/b`). `visit` may consume `body`
 * or leave it: what it leaves is read to its end here. A tar that ends early or does not
 * parse is BAD_ARCHIVE; errors of the file itself and StoreErrors from `visit` pass as they are.
 */
export async function eachArchiveMember(file: string, visit: (name: string, header: tar.Headers, body: Readable) => Promise<void>): Promise<void> {
  const input = await openTarFile(file);
  const extract = tar.extract();
  input.on('error', err => extract.destroy(err));
  // No await between piping and iterating: tar-stream drops entries no iterator is there to take.
  input.pipe(extract);
  try {
    for await (const entry of extract) {
      const body = Readable.from(entry as AsyncIterable<Buffer>);
      await visit(splitLayerPath(entry.header.name).join('/'), entry.header, body);
      if (!body.readableEnded) {
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
