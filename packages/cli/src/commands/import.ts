import * as path from 'node:path';
import {Command, Option, UsageError} from 'clipanion';
import type {Digest, Store, TagRef} from '@strata/store';
import {parseTagArgument} from '../arguments.js';
import {importProgressBar} from '../progress.js';
import {formatBytes, plural} from '../render.js';
import {BaseCommand} from './BaseCommand.js';

/** What `strata import --json` prints; `image` and `tag` only with --tag. */
export interface ImportReport {
  readonly layer: Digest;
  readonly image?: Digest;
  readonly tag?: TagRef;
  readonly layers?: number;
  readonly entries: number;
  readonly bytes: number;
  readonly newBytes: number;
  readonly newObjects: number;
}

export class ImportCommand extends BaseCommand {
  static override paths = [['import']];
  static override usage = Command.Usage({
    category: 'Images',
    description: 'import a directory or a tar as a layer',
    details: `
      Stores SRC, a directory or a tar archive (plain, or gzip, zstd, xz or bzip2 compressed), as one layer (\`-\`: a tar read from standard input): every file's bytes once, every directory as a tree. Content the store already has is not written again, so importing the same tree twice stores nothing new and gives the same layer id.

      With \`--tag\`, also makes an image of the new layer (on top of the layers of \`--on IMAGE\`, whose config it inherits) and tags it. \`--message\` is recorded in that image's history.

      A tar's whiteout entries (\`.wh.NAME\`, \`.wh..wh..opq\`) become whiteouts and opaque directories. Unsafe archives (absolute paths, \`..\`, hardlinks out of the archive) and sockets or devices in a directory are refused, and the store is left as it was.
    `,
    examples: [
      ['Import a directory as a layer', '$0 import ./rootfs'],
      ['Import a tar and tag an image of it', '$0 import base.tar.gz --tag base:1'],
      ['Import a tar from a pipe', 'tar -C ./rootfs -c . | $0 import - --tag base:2'],
      ['Add a layer on top of an image', '$0 import ./app --on base:1 --tag app:1 --message "add the app"'],
    ],
  });

  source = Option.String({name: 'SRC'});
  tag = Option.String('--tag', {description: 'make an image of the layer and tag it NAME:TAG'});
  on = Option.String('--on', {description: 'with --tag: the image (tag or id) whose layers go below the new one'});
  message = Option.String('-m,--message', {description: 'with --tag: a comment for the image history'});
  json = Option.Boolean('--json', false, {description: 'print the layer, image and what was stored as JSON'});

  async run(): Promise<number> {
    // Every argument is checked before anything is written.
    if (!this.tag && this.on !== undefined) throw new UsageError('--on needs --tag: it names the image the new image is built on');
    if (!this.tag && this.message !== undefined) throw new UsageError('--message needs --tag: it is recorded in the new image');
    const tag = this.tag === undefined ? undefined : await parseTagArgument(this.tag);
    const fromStdin = this.source === '-';
    if (fromStdin && (this.stdin as {isTTY?: boolean}).isTTY) throw new UsageError('"-" reads a tar from standard input, which is a terminal; pipe one in (tar -c . | strata import -)');
    const {hostPlatform, importLayer, importTarInput} = await import('@strata/store');
    const store = await this.openStore();
    const base = this.on === undefined ? undefined : await store.resolveImage(this.on);

    const progress = await importProgressBar(this.context.stderr, this.context.stdout);
    let result;
    try {
      result = fromStdin
        ? await importTarInput(store, this.stdin, 'standard input', {source: 'standard input', onProgress: progress.onProgress})
        : await importLayer(store, this.source, {source: path.resolve(this.source), onProgress: progress.onProgress});
    } finally {
      progress.stop();
    }
    const {layer} = result;
    const stored = {entries: layer.entries, bytes: layer.bytes, newBytes: result.newBytes, newObjects: result.newObjects};
    let report: ImportReport = {layer: layer.id, ...stored};
    if (tag) {
      const {stackImage} = await import('@strata/union');
      // A layer on --on runs where --on's layers do; a directory or tar alone is taken to be
      // for the host it came from (as docker import does).
      const {id, image} = await stackImage(store, layer.id, {
        ...(base ? {base: base.image} : {platform: hostPlatform()}),
        createdBy: 'strata import', ...(this.message !== undefined ? {comment: this.message} : {}), tag,
      });
      report = {layer: layer.id, image: id, tag, layers: image.layers.length, ...stored};
    }
    this.print(this.json, report, r =>
      `layer ${r.layer} (${plural(r.entries, 'entry', 'entries')}, ${formatBytes(r.bytes)}; stored ${formatBytes(r.newBytes)} new)\n`
      + (r.image ? `image ${r.image} tagged ${r.tag} (${plural(r.layers ?? 0, 'layer', 'layers')})\n` : ''));
    if (!tag && !(await isKept(store, layer.id)))
      this.note(`strata: no tag or pin keeps layer ${layer.id.slice(3, 15)}, so the next "strata gc" removes it; import with --tag NAME:TAG to keep it`);
    return 0;
  }
}

/** Whether gc keeps a layer: a tagged or pinned image uses it, or it is pinned itself. */
async function isKept(store: Store, layer: Digest): Promise<boolean> {
  const {listPins} = await import('@strata/store');
  const pins = await listPins(store);
  if (pins.some(p => p.kind === 'layer' && p.id === layer)) return true;
  const pinned = new Set(pins.filter(p => p.kind === 'image').map(p => p.id));
  return (await store.listImages()).some(i => (i.tags.length > 0 || pinned.has(i.id)) && i.image.layers.includes(layer));
}
