import * as path from 'node:path';
import {Command, Option, UsageError} from 'clipanion';
import type {ImageSourceFormat, ImportedImage} from '@strata/store';
import {parseTagArgument} from '../../arguments.js';
import {imageProgressBar} from '../../progress.js';
import {formatBytes, plural, shortDigest} from '../../render.js';
import {BaseCommand} from '../BaseCommand.js';

/** What `strata image import --json` prints. */
export interface ImageImportReport {
  /** The absolute path read, the transport reference as given (`oci:DIR:REF`), or `-` for standard input. */
  readonly source: string;
  readonly format: ImageSourceFormat;
  readonly images: readonly ImportedImage[];
  /** Blob bytes the whole import stored: the sum of the images' newBytes (each layer counted once). */
  readonly newBytes: number;
}

export class ImageImportCommand extends BaseCommand {
  static override paths = [['image', 'import']];
  static override usage = Command.Usage({
    category: 'Images',
    description: 'import an OCI image layout or a docker archive',
    details: `
      PATH is an OCI image layout directory (oci-layout, index.json, blobs/), an OCI archive (a tar of one, as \`podman save --format oci-archive\` writes) or a \`docker save\` archive; archives may be plain or gzip, zstd, xz or bzip2 compressed. \`-\` reads an archive from standard input. PATH may also name its format as skopeo does: \`oci:DIR[:REF]\` (only the image named REF), \`oci-archive:FILE[:REF]\`, \`docker-archive:FILE[:NAME:TAG]\`. Every image it holds is stored: each layer (gzip, zstd or plain tar) becomes a strata layer, its OCI whiteouts strata whiteouts and opaque directories, and the config's env, cmd, entrypoint, working dir, user, labels and history are kept. Layers whose content the store has are not stored again.

      Each image is tagged with the name the layout gives (\`org.opencontainers.image.ref.name\`; a bare tag such as \`latest\` takes the directory's name) or the archive's RepoTags, or with \`--tag\` when PATH holds one image.

      Every blob is checked against its descriptor (size and sha256) and every layer against the config's DiffID; a mismatch, a malformed manifest or an unsafe layer fails the whole import and stores no layer, image or tag.
    `,
    examples: [
      ['Import an OCI layout made by skopeo or umoci', '$0 image import ./alpine-oci'],
      ['Import a docker save archive under a new name', '$0 image import alpine.tar --tag alpine:3.20'],
      ['Import what podman saves, through a pipe', 'podman save alpine:3.20 | $0 image import -'],
      ['Import one image of a layout that holds several', '$0 image import oci:./layout:app:1'],
      ['Refuse any layer that expands past 10 GiB', '$0 image import ./untrusted-oci --max-layer-size 10G'],
    ],
  });

  source = Option.String({name: 'PATH'});
  tag = Option.String('--tag', {description: 'tag the image NAME:TAG instead of the name PATH gives (PATH must hold one image)'});
  maxLayerSize = Option.String('--max-layer-size', {description: 'refuse a layer that expands past SIZE bytes (K, M, G, T: powers of 1024), e.g. 10G'});
  json = Option.Boolean('--json', false, {description: 'print the images, their layers and what was stored as JSON'});

  async run(): Promise<number> {
    const tag = this.tag === undefined ? undefined : await parseTagArgument(this.tag);
    const maxLayerBytes = this.maxLayerSize === undefined ? undefined : parseSize(this.maxLayerSize);
    const fromStdin = this.source === '-';
    if (fromStdin && (this.stdin as {isTTY?: boolean}).isTTY) throw new UsageError('"-" reads an archive from standard input, which is a terminal; pipe one in (podman save IMAGE | strata image import -)');
    const {importImageFrom, importImageStream} = await import('@strata/store');
    const store = await this.openStore();
    const progress = await imageProgressBar('importing', this.context.stderr, this.context.stdout);
    let result;
    try {
      const options = {...(tag ? {tag} : {}), ...(maxLayerBytes !== undefined ? {maxLayerBytes} : {}), onProgress: progress.onProgress};
      result = fromStdin ? await importImageStream(store, this.stdin, options) : await importImageFrom(store, this.source, options);
    } finally {
      progress.stop();
    }
    const named = /^(oci|oci-archive|docker-archive):/.test(this.source);
    const report: ImageImportReport = {source: fromStdin ? '-' : named ? this.source : path.resolve(this.source), ...result, newBytes: result.images.reduce((n, i) => n + i.newBytes, 0)};
    const layers = new Set(result.images.flatMap(i => i.layers.map(l => l.id))).size;
    this.print(this.json, report, r => r.images.map(i =>
      `image ${i.id} ${i.tags.length ? `tagged ${i.tags.join(', ')} ` : ''}(${plural(i.layers.length, 'layer', 'layers')}: ${i.layers.map(l => shortDigest(l.id)).join(' ')}; stored ${formatBytes(i.newBytes)} new)\n`).join('')
      + (r.images.length > 1 ? `${plural(r.images.length, 'image', 'images')}, ${plural(layers, 'distinct layer', 'distinct layers')}: stored ${formatBytes(r.newBytes)} new in total\n` : ''));
    const untagged = result.images.filter(i => i.tags.length === 0);
    for (const i of untagged) this.note(`strata: image ${shortDigest(i.id)} has no tag, so the next "strata gc" removes it; name it with "strata image tag ${shortDigest(i.id)} NAME:TAG"`);
    return 0;
  }
}

/** `10G` -> 10 GiB: a byte count with an optional K, M, G or T (powers of 1024). A bad one is a usage error. */
function parseSize(text: string): number {
  const m = /^(\d+)([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`--max-layer-size takes a size such as 500M or 10G, not "${text}"`);
  return Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
}
