import {Command, Option, UsageError} from 'clipanion';
import type {Digest, ExportedImage, TagRef} from '@strata/store';
import {imageProgressBar} from '../../progress.js';
import {formatBytes, plural} from '../../render.js';
import {BaseCommand} from '../BaseCommand.js';
import {parseCompression} from '../layer/export.js';

/** What `strata image export --json` prints. */
export type ImageExportReport = ExportedImage & {readonly image: Digest; readonly tag?: TagRef; readonly format: 'oci' | 'oci-archive' | 'docker'};

export class ImageExportCommand extends BaseCommand {
  static override paths = [['image', 'export']];
  static override usage = Command.Usage({
    category: 'Images',
    description: 'write an image as an OCI image layout or a docker archive',
    details: `
      Writes IMAGE (a tag, an id or a unique id prefix) to PATH, which may name its format as skopeo does (\`oci:DIR[:REF]\`, \`oci-archive:FILE[:REF]\`, \`docker-archive:FILE[:NAME:TAG]\`; REF names the image in it): with \`--format oci\` (the default) an OCI image layout directory (PATH must be missing or empty), with \`--format docker\` a \`docker save\` archive that \`docker load\` and \`skopeo copy docker-archive:\` read (PATH must not exist).

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
    const {parseImageRef, RegistryError} = await import('@strata/registry');
    // PATH may name its format as skopeo does: oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG].
    let target;
    try {
      target = parseImageRef(this.target, 'path');
    } catch (err) {
      if (err instanceof RegistryError) throw new UsageError(err.message);
      throw err;
    }
    if (target?.transport === 'docker') throw new UsageError(`"${this.target}" is a registry: "strata push ${this.image} ${this.target}" sends it there`);
    const format: ImageExportReport['format'] = target?.transport === 'oci-archive' ? 'oci-archive' : target?.transport === 'docker-archive' ? 'docker' : target?.transport === 'oci' ? 'oci' : this.format;
    const file = target?.path ?? this.target;
    const compression = parseCompression(this.compress, format === 'docker' ? 'none' : 'gzip');
    const {exportOciLayout, exportOciArchive, exportDockerArchive, parseTag} = await import('@strata/store');
    const store = await this.openStore({readOnly: true});
    const {id, image} = await store.resolveImage(this.image);
    // Name the export by the REF given, else when IMAGE was given as a tag that names this image.
    let tag: TagRef | undefined;
    if (target?.ref !== undefined) tag = (format === 'docker' ? parseTag(target.ref) : target.ref) as TagRef;
    else {
      try {
        const t = parseTag(this.image);
        if ((await store.getTag(t)) === id) tag = t;
      } catch { /* an id: no name */ }
    }
    const progress = await imageProgressBar('exporting', this.context.stderr, this.context.stdout);
    let result: ExportedImage;
    try {
      const options = {compression, ...(tag ? {tag} : {}), onProgress: progress.onProgress};
      result = format === 'oci' ? await exportOciLayout(store, image, file, options)
        : format === 'oci-archive' ? await exportOciArchive(store, image, file, options)
          : await exportDockerArchive(store, image, file, options);
    } finally {
      progress.stop();
    }
    const report: ImageExportReport = {image: id, ...(tag ? {tag} : {}), format, ...result};
    this.print(this.json, report, r =>
      `image ${r.image} -> ${r.path} (${r.format}, ${plural(r.layers.length, 'layer', 'layers')}, ${formatBytes(r.layers.reduce((n, l) => n + l.size, 0))})\n`);
    return 0;
  }
}
