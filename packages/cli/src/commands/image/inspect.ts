import {Command, Option} from 'clipanion';
import type {Digest, ImageConfig, Platform, TagRef} from '@strata/store';
import {formatBytes, formatCount, formatFields, formatTable, plural, shortDigest} from '../../render.js';
import {BaseCommand} from '../BaseCommand.js';

/** What `strata image inspect --json` prints. */
export interface ImageReport {
  readonly id: Digest;
  readonly tags: readonly TagRef[];
  /** Bottom first, as the image stores them. */
  readonly layers: readonly {readonly id: Digest; readonly entries: number; readonly bytes: number}[];
  readonly bytes: number;
  readonly config: ImageConfig;
  /** Absent when the image's source named none (a directory or tar import); an export then names the host's. */
  readonly platform?: Platform;
}

export class ImageInspectCommand extends BaseCommand {
  static override paths = [['image', 'inspect']];
  static override usage = Command.Usage({
    category: 'Images',
    description: 'show an image: its id, tags, layers and config',
    details: 'IMAGE is a tag (`name:tag`, or `name` for `name:latest`), a full id, or a unique id prefix of at least 4 hex digits. Layers are listed bottom first.',
    examples: [
      ['Inspect a tagged image', '$0 image inspect app:1'],
      ['Inspect by id prefix, as JSON', '$0 image inspect 9f1c2a --json'],
    ],
  });

  image = Option.String({name: 'IMAGE'});
  json = Option.Boolean('--json', false, {description: 'print {id, tags, layers, bytes, config, platform} as JSON'});

  async run(): Promise<number> {
    const store = await this.openStore({readOnly: true});
    const {id, image} = await store.resolveImage(this.image);
    const tags = (await store.listTags()).filter(t => t.image === id).map(t => t.tag).sort();
    const layers = [];
    for (const l of image.layers) {
      const record = await store.getLayer(l);
      layers.push({id: l, entries: record?.entries ?? 0, bytes: record?.bytes ?? 0});
    }
    const report: ImageReport = {id, tags, layers, bytes: layers.reduce((s, l) => s + l.bytes, 0), config: image.config, ...(image.platform ? {platform: image.platform} : {})};
    this.print(this.json, report, renderImage);
    return 0;
  }
}

function renderImage(r: ImageReport): string {
  const c = r.config;
  const fields: [string, string][] = [
    ['image', r.id],
    ['tags', r.tags.length > 0 ? r.tags.join(', ') : '<none>'],
    ['size', `${formatBytes(r.bytes)} in ${plural(r.layers.length, 'layer', 'layers')}`],
    // os/architecture/variant, as docker and skopeo write a platform (the store stays unloaded until needed).
    ['platform', r.platform ? [r.platform.os, r.platform.architecture, r.platform.variant].filter(Boolean).join('/') : '<none>'],
  ];
  if (c.entrypoint) fields.push(['entrypoint', JSON.stringify(c.entrypoint)]);
  if (c.cmd) fields.push(['cmd', JSON.stringify(c.cmd)]);
  if (c.workingDir) fields.push(['workdir', c.workingDir]);
  if (c.user) fields.push(['user', c.user]);
  for (const e of c.env ?? []) fields.push(['env', e]);
  for (const [k, v] of Object.entries(c.labels ?? {})) fields.push(['label', `${k}=${v}`]);
  let out = `${formatFields(fields)}\nlayers (bottom first):\n`;
  out += formatTable([['#', 'LAYER', 'ENTRIES', 'SIZE'], ...r.layers.map((l, i) => [String(i + 1), shortDigest(l.id), formatCount(l.entries), formatBytes(l.bytes)])],
    ['right', 'left', 'right', 'right']);
  const history = c.history ?? [];
  if (history.length > 0) {
    out += '\nhistory:\n';
    for (const h of history) out += `  ${[h.created, h.createdBy, h.comment].filter(Boolean).join('  ')}\n`;
  }
  return out;
}
