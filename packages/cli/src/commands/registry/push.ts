import * as fs from 'node:fs/promises';
import {Command, Option, UsageError} from 'clipanion';
import type {ImageRef} from '@strata/registry';
import type {PushedImage} from '@strata/store';
import {pushProgressBar} from '../../progress.js';
import {formatBytes} from '../../render.js';
import {RegistryCommand} from './RegistryCommand.js';

/** What `strata push --json` prints. */
export type PushReport = PushedImage & {readonly image: string; readonly destination: string};

export class PushCommand extends RegistryCommand {
  static override paths = [['push']];
  static override usage = Command.Usage({
    category: 'Registries',
    description: 'push an image to a registry',
    details: `
      IMAGE is a tag, an id or a unique id prefix; DEST an image reference as skopeo takes it: \`[docker://]HOST[:PORT]/NAME[:TAG]\` (tag \`latest\` when none).

      Blobs go first, the manifest last, and the manifest's digest is printed (and written to \`--digestfile\`). A layer the registry has is not sent; one it lacks is mounted from another repository of the same registry that strata saw holding it, else exported, compressed (\`--compress\` gzip, the default, or zstd) and uploaded in one stream. strata records each layer's compressed digest, so pushing again compresses and uploads nothing. An image pulled and not changed is pushed as its original manifest and config, so its digest stays the one it was pulled by.
    `,
    examples: [
      ['Push to a local registry over plain HTTP', '$0 push app:1 localhost:5000/team/app:1 --tls-verify=false'],
      ['Push with zstd layers and keep the digest', '$0 push app:1 docker://quay.io/org/app:v1 --compress zstd --digestfile app.digest'],
    ],
  });

  image = Option.String({name: 'IMAGE'});
  destination = Option.String({name: 'DEST'});
  compress = Option.String('--compress', 'gzip', {description: 'layer compression for blobs strata uploads: gzip (default) or zstd'});
  digestfile = Option.String('--digestfile', {description: 'write the manifest digest to this file'});
  json = Option.Boolean('--json', false, {description: 'print the manifest digest and what became of each blob as JSON'});

  async run(): Promise<number> {
    const {parseImageRef, RegistryError} = await import('@strata/registry');
    let ref: ImageRef;
    try {
      ref = parseImageRef(this.destination, 'docker');
    } catch (err) {
      if (err instanceof RegistryError) throw new UsageError(err.message);
      throw err;
    }
    if (ref.transport !== 'docker') throw new UsageError(`"${this.destination}" is not a registry; write it with "strata image export ${this.image} ${this.destination}"`);
    if (ref.ref.digest !== undefined) throw new UsageError(`"${this.destination}" names a digest; push to a tag (the digest is the manifest's)`);
    if (this.compress !== 'gzip' && this.compress !== 'zstd') throw new UsageError(`--compress must be gzip or zstd, not "${this.compress}"`);
    const compression = this.compress;
    const r = ref.ref;
    const client = await this.client(r.domain, r.path);
    const {pushImage} = await import('@strata/store');
    const store = await this.openStore();
    const image = await store.resolveImage(this.image);
    const progress = await pushProgressBar(this.context.stderr, this.context.stdout);
    let pushed: PushedImage;
    try {
      pushed = await pushImage(store, client, image, {repo: r.path, tag: r.tag ?? 'latest', compression, onProgress: progress.onProgress});
    } finally {
      progress.stop();
    }
    if (this.digestfile !== undefined) await fs.writeFile(this.digestfile, pushed.manifest);
    const report: PushReport = {image: image.id, destination: this.destination, ...pushed};
    this.print(this.json, report, p => {
      const count = (a: string) => p.blobs.filter(b => b.action === a).length;
      this.note(`pushed ${p.blobs.length} blobs: ${count('uploaded')} uploaded (${formatBytes(p.uploadedBytes)}), ${count('mounted')} mounted, ${count('present')} already there`);
      return `${p.manifest}\n`;
    });
    return 0;
  }
}
