import * as fs from 'node:fs/promises';
import type {Readable} from 'node:stream';
import {StoreError, sourceError} from '../errors.js';
import {decompress, sniffStream} from '../oci/decompress.js';
import {importDirectory} from './importDirectory.js';
import type {ImportOptions, ImportResult} from './importResult.js';
import {importTarFile, importTarStream} from './importTar.js';
import type {Store} from '../objects/Store.js';

/** Imports a directory or a tar file (plain, gzip, zstd) as a layer. Throws SOURCE_MISSING and the importers' codes. */
export async function importLayer(store: Store, source: string, options: ImportOptions = {}): Promise<ImportResult> {
  const st = await fs.stat(source).catch(err => { throw sourceError(err, source); });
  if (st.isDirectory()) return importDirectory(store, source, options);
  if (st.isFile()) return importTarFile(store, source, options);
  throw new StoreError('SOURCE_MISSING', `${source} is neither a directory nor a tar file`);
}

/**
 * Imports a tar read from a stream (`tar -c . | strata import -`), plain or gzip, zstd,
 * xz or bzip2 compressed (sniffed). `label` names the stream in errors. Throws
 * BAD_ARCHIVE (also for an empty stream) and the tar importer's codes.
 */
export async function importTarInput(store: Store, input: Readable, label: string, options: ImportOptions = {}): Promise<ImportResult> {
  const [compression, stream, empty] = await sniffStream(input);
  // An empty stream is no tar (tar-stream would read it as an empty archive).
  if (empty) throw new StoreError('BAD_ARCHIVE', `${label} is empty, not a tar archive`);
  return importTarStream(store, decompress(stream, compression), options);
}
