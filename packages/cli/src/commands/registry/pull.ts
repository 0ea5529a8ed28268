import {Command, Option, UsageError} from 'clipanion';
import type {ImageRef} from '@strata/registry';
import type {PulledImage} from '@strata/store';
import {parseTagArgument} from '../../arguments.js';
import {pullProgressBar} from '../../progress.js';
import {formatBytes, plural, shortDigest} from '../../render.js';
import {RegistryCommand} from './RegistryCommand.js';

/** What `strata pull --json` prints. */
export type PullReport = PulledImage & {readonly source: string};

export class PullCommand extends RegistryCommand {
  static override paths = [['pull']];
  static override usage = Command.Usage({
    category: 'Registries',
    description: 'pull an image from a registry',
    details: `
      SRC is an image reference as skopeo and podman take it: \`[docker://]HOST[:PORT]/NAME[:TAG|@DIGEST]\` (a name without a host is on docker.io, a one-part name under library/), or \`oci:DIR[:REF]\`, \`oci-archive:FILE[:REF]\`, \`docker-archive:FILE\`, which are read as \`strata image import\` reads them.

      An index or manifest list is resolved to the host's platform, or to \`--platform OS/ARCH[/VARIANT]\`. Layers the store already has (by their compressed digest or DiffID) are not fetched; the others are fetched several at a time, each checked against its digest while it streams and resumed where it stopped when a connection drops. Nothing is visible until the whole image is in.

      The image is tagged with its reference (\`HOST[:PORT]/NAME:TAG\`; Docker Hub names in docker's short form), or with \`--tag\`. strata keeps the original manifest and config, so pushing the unchanged image gives the same digest.
    `,
    examples: [
      ['Pull from a local registry over plain HTTP', '$0 pull localhost:5000/team/app:1 --tls-verify=false'],
      ['Pull the arm64 image of a multi-platform tag', '$0 pull docker://quay.io/org/app:v1 --platform linux/arm64'],
    ],
  });

  source = Option.String({name: 'SRC'});
  tag = Option.String('--tag', {description: 'tag the image NAME:TAG instead of its reference'});
  platform = Option.String('--platform', {description: 'OS/ARCH[/VARIANT] to pick from a multi-platform image (default: the host\'s)'});
  json = Option.Boolean('--json', false, {description: 'print the image, its layers and what was fetched as JSON'});

  async run(): Promise<number> {
    const {parseImageRef, familiarName, RegistryError} = await import('@strata/registry');
    let ref: ImageRef;
    try {
      ref = parseImageRef(this.source, 'docker');
    } catch (err) {
      if (err instanceof RegistryError) throw new UsageError(err.message);
      throw err;
    }
    if (ref.transport !== 'docker') throw new UsageError(`"${this.source}" is not in a registry; import it with "strata image import ${this.source}"`);
    if (this.platform !== undefined && !/^[a-z0-9]+\/[a-z0-9]+(\/[a-z0-9]+)?$/.test(this.platform)) throw new UsageError(`--platform must be OS/ARCH[/VARIANT], not "${this.platform}"`);
    const r = ref.ref;
    const tags = this.tag !== undefined ? [await parseTagArgument(this.tag)]
      : r.tag !== undefined || r.digest === undefined ? [await parseTagArgument(`${familiarName(r)}:${r.tag ?? 'latest'}`)] : [];
    const client = await this.client(r.domain, r.path);
    const {pullImage} = await import('@strata/store');
    const store = await this.openStore();
    const progress = await pullProgressBar(this.context.stderr, this.context.stdout);
    let pulled: PulledImage;
    try {
      pulled = await pullImage(store, client, {repo: r.path, ref: r.digest ?? r.tag ?? 'latest', tags, ...(this.platform ? {platform: this.platform} : {}), onProgress: progress.onProgress});
    } finally {
      progress.stop();
    }
    const report: PullReport = {source: this.source, ...pulled};
    this.print(this.json, report, p => {
      const fetched = p.blobs.filter(b => b.fetched).length;
      return `image ${p.id} ${p.tags.length ? `tagged ${p.tags.join(', ')} ` : '(untagged: give --tag to keep it through gc) '}(${plural(p.layers.length, 'layer', 'layers')}: ${p.layers.map(l => shortDigest(l.id)).join(' ')}; fetched ${fetched} of ${p.blobs.length}, ${formatBytes(p.fetchedBytes)})\n`;
    });
    return 0;
  }
}
