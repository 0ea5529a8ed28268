import * as path from 'node:path';
import {Command, Option} from 'clipanion';
import type {ImageFormat, ImportedImage} from '@strata/store';
import {parseTagArgument} from '../../arguments.js';
import {imageProgressBar} from '../../progress.js';
import {formatBytes, plural, shortDigest} from '../../render.js';
import {BaseCommand} from '../BaseCommand.js';

/** What `strata image import --json` prints. */
export interface ImageImportReport {
  readonly source: string;
  readonly format: ImageFormat;
  readonly images: readonly ImportedImage[];
}

export class ImageImportCommand extends BaseCommand {
  static override paths = [['image', 'import']];
  static override usage = Command.Usage({
    category: 'Images',
    description: 'import an OCI image layout or a docker archive',
    details: `
      PATH is an OCI image layout directory (oci-layout, index.json, blobs/) or a \`docker save\` archive (plain, gzip or zstd), or names its format as skopeo does: \`oci:DIR[:REF]\` (only the image named REF), \`oci-archive:FILE[:REF]\` (a tar of a layout), \`docker-archive:FILE[:NAME:TAG]\`. Every image it holds is stored: each layer (gzip, zstd or plain tar) becomes a strata layer, its OCI whiteouts strata whiteouts and opaque directories, and the config's env, cmd, entrypoint, working dir, user, labels and history are kept. Layers whose content the store has are not stored again.

      Each image is tagged with the name the layout gives (\`org.opencontainers.image.ref.name\`; a bare tag such as \`latest\` takes the directory's name) or the archive's RepoTags, or with \`--tag\` when PATH holds one image.

      Every blob is checked against its descriptor (size and sha256) and every layer against the config's DiffID; a mismatch, a malformed manifest or an unsafe layer fails the whole import and stores no layer, image or tag.
    `,
    examples: [
      ['Import an OCI layout made by skopeo or umoci', '$0 image import ./alpine-oci'],
      ['Import a docker save archive under a new name', '$0 image import alpine.tar --tag alpine:3.20'],
      ['Import one image of a layout that holds several', '$0 image import oci:./layout:app:1'],
    ],
  });

  source = Option.String({name: 'PATH'});
  tag = Option.String('--tag', {description: 'tag the image NAME:TAG instead of the name PATH gives (PATH must hold one image)'});
  json = Option.Boolean('--json', false, {description: 'print the images, their layers and what was stored as JSON'});

  async run(): Promise<number> {
    const tag = this.tag === undefined ? undefined : await parseTagArgument(this.tag);
    const {importImageFrom} = await import('@strata/store');
    const store = await this.openStore();
    const progress = await imageProgressBar('importing', this.context.stderr, this.context.stdout);
    let result;
    try {
      result = await importImageFrom(store, this.source, {...(tag ? {tag} : {}), onProgress: progress.onProgress});
    } finally {
      progress.stop();
    }
    const report: ImageImportReport = {source: this.source.includes(':') ? this.source : path.resolve(this.source), ...result};
    this.print(this.json, report, r => r.images.map(i =>
      `image ${i.id} ${i.tags.length ? `tagged ${i.tags.join(', ')} ` : ''}(${plural(i.layers.length, 'layer', 'layers')}: ${i.layers.map(l => shortDigest(l.id)).join(' ')}; stored ${formatBytes(i.newBytes)} new)\n`).join(''));
    return 0;
  }
}
