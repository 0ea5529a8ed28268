import * as path from 'node:path';
import {Command, Option, UsageError} from 'clipanion';
import type {Compression, Digest} from '@strata/store';
import {formatBytes} from '../../render.js';
import {BaseCommand} from '../BaseCommand.js';

/** What `strata layer export --json` prints: the layer and the OCI descriptor of the file. */
export interface LayerExportReport {
  readonly layer: Digest;
  readonly file: string;
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly diffId: string;
}

/** Parses `--compress`; a wrong value is a usage error. */
export function parseCompression(value: string | undefined, fallback: Compression): Compression {
  if (value === undefined) return fallback;
  if (value !== 'gzip' && value !== 'zstd' && value !== 'none') throw new UsageError(`--compress must be gzip, zstd or none, not "${value}"`);
  return value;
}

export class LayerExportCommand extends BaseCommand {
  static override paths = [['layer', 'export']];
  static override usage = Command.Usage({
    category: 'Layers',
    description: 'write a layer as an OCI layer tar',
    details: `
      Writes LAYER (a full id or a unique prefix) to FILE as an OCI layer tar: whiteouts as \`.wh.NAME\`, opaque directories with a \`.wh..wh..opq\` entry, hardlinks as tar links, xattrs as SCHILY.xattr records. The output is deterministic (entries in tree order, mtimes as stored, no host names), so the same layer always gives the same bytes, and importing it gives the same layer id.

      gzip-compressed by default; \`--compress zstd\` needs the zstd program. FILE must not exist; \`-\` writes to stdout.
    `,
    examples: [
      ['Export a layer as a gzip tar', '$0 layer export 9f1c2a layer.tar.gz'],
      ['Export a layer uncompressed and list it', '$0 layer export 9f1c2a - --compress none | tar tv'],
    ],
  });

  layer = Option.String({name: 'LAYER'});
  file = Option.String({name: 'FILE'});
  compress = Option.String('--compress', {description: 'gzip (default), zstd or none'});
  json = Option.Boolean('--json', false, {description: 'print the digest, size, DiffID and media type as JSON'});

  async run(): Promise<number> {
    const compression = parseCompression(this.compress, 'gzip');
    if (this.file === '-' && this.json) throw new UsageError('--json cannot share stdout with the tar; give a FILE');
    const {writeLayerTar, exportLayerStream, createCompressor, MEDIA} = await import('@strata/store');
    const store = await this.openStore({readOnly: true});
    const record = await store.resolveLayer(this.layer);
    if (this.file === '-') {
      const {pipeline} = await import('node:stream/promises');
      try {
        await pipeline(exportLayerStream(store, record.id), createCompressor(compression), this.context.stdout);
      } catch (err) {
        // The reader went away (`… | head`): stop quietly, as `strata cat` does.
        if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err;
      }
      return 0;
    }
    const file = path.resolve(this.file);
    const blob = await writeLayerTar(store, record.id, file, compression);
    const report: LayerExportReport = {layer: record.id, file, mediaType: MEDIA.layer[compression], digest: blob.digest, size: blob.size, diffId: blob.diffId};
    this.print(this.json, report, r => `layer ${r.layer} -> ${r.file} (${formatBytes(r.size)}, ${r.digest})\n`);
    return 0;
  }
}
