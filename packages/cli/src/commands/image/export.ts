import {Command, Option, UsageError} from 'clipanion';
import type {Digest, ExportedImage, TagRef} from '@strata/store';
import {imageProgressBar} from '../../progress.js';
import {formatBytes, plural} from '../../render.js';
import {BaseCommand} from '../BaseCommand.js';
import {parseCompression} from '../layer/export.js';

/** What `strata image export --json` prints. */
export type ImageExportReport = ExportedImage & {readonly image: Digest; readonly tag?: TagRef; readonly format: 'oci' | 'docker'};

export class ImageExportCommand extends BaseCommand {
  static override paths = [['image', 'export']];
  static override usage = Command.Usage({
    category: 'Images',
    description: 'write an image as an OCI image layout or a docker archive',
    details: `
      Writes IMAGE (a tag, an id or a unique id prefix) to PATH: with \`--format oci\` (the default) an OCI image layout directory (PATH must be missing or empty), with \`--format docker\` a \`docker save\` archive that \`docker load\` and \`skopeo copy docker-archive:\` read (PATH must not exist).

      Layer blobs carry sha256 digests of their (compressed) bytes, the config their DiffIDs (sha256 of the plain tar), and standard media types. OCI layouts are gzip-compressed by default, docker archives plain; \`--compress\` chooses gzip, zstd or none. When IMAGE is a tag, the image is named by it (\`org.opencontainers.image.ref.name\` / RepoTags). The config names the host's architecture and linux, since strata images record no platform.

      The output is deterministic: exporting the same image twice gives the same bytes. It is written beside PATH and moved into place at the end, so a failed export leaves nothing.
    `,
    examples: [
      ['Export an image as an OCI layout', '$0 image export app:1 ./app-oci'],
      ['Export a docker archive and load it', '$0 image export app:1 app.tar --format docker && docker load -i app.tar'],
      ['Export with zstd layers', '$0 image export app:1 ./app-oci --compress zstd'],
    ],
  });

  image = Option.String({name: 'IMAGE'});
  target = Option.String({name: 'PATH'});
  format = Option.String('--format', 'oci', {description: 'oci (an image layout directory, the default) or docker (a docker save archive)'});
  compress = Option.String('--compress', {description: 'layer compression: gzip (default for oci), zstd or none (default for docker)'});
  json = Option.Boolean('--json', false, {description: 'print the digests of the manifest, config and layers as JSON'});

  async run(): Promise<number> {
    if (this.format !== 'oci' && this.format !== 'docker') throw new UsageError(`--format must be oci or docker, not "${this.format}"`);
    const format = this.format;
    const compression = parseCompression(this.compress, format === 'oci' ? 'gzip' : 'none');
    const {exportOciLayout, exportDockerArchive, parseTag} = await import('@strata/store');
    const store = await this.openStore({readOnly: true});
    const {id, image} = await store.resolveImage(this.image);
    // Name the export only when IMAGE was given as a tag that names this image.
    let tag: TagRef | undefined;
    try {
      const t = parseTag(this.image);
      if ((await store.getTag(t)) === id) tag = t;
    } catch { /* an id: no name */ }
    const progress = await imageProgressBar('exporting', this.context.stderr, this.context.stdout);
    let result: ExportedImage;
    try {
      const options = {compression, ...(tag ? {tag} : {}), onProgress: progress.onProgress};
      result = format === 'oci' ? await exportOciLayout(store, image, this.target, options) : await exportDockerArchive(store, image, this.target, options);
    } finally {
      progress.stop();
    }
    const report: ImageExportReport = {image: id, ...(tag ? {tag} : {}), format, ...result};
    this.print(this.json, report, r =>
      `image ${r.image} -> ${r.path} (${r.format}, ${plural(r.layers.length, 'layer', 'layers')}, ${formatBytes(r.layers.reduce((n, l) => n + l.size, 0))})\n`);
    return 0;
  }
}
