import * as fs from 'node:fs/promises';
import {StoreError, sourceError} from '../errors.js';
import {importDirectory} from './importDirectory.js';
import type {ImportOptions, ImportResult} from './importResult.js';
import {importTarFile} from './importTar.js';
import type {Store} from '../objects/Store.js';

/** Imports a directory or a tar file (plain, gzip, zstd) as a layer. Throws SOURCE_MISSING and the importers' codes. */
export async function importLayer(store: Store, source: string, options: ImportOptions = {}): Promise<ImportResult> {
  const st = await fs.stat(source).catch(err => { throw sourceError(err, source); });
  if (st.isDirectory()) return importDirectory(store, source, options);
  if (st.isFile()) return importTarFile(store, source, options);
  throw new StoreError('SOURCE_MISSING', `${source} is neither a directory nor a tar file`);
}
