import {Command, Option} from 'clipanion';
import type {LayerRecord} from '@strata/store';
import {formatBytes, formatCount, formatTable, shortDigest} from '../../render.js';
import {BaseCommand} from '../BaseCommand.js';

/** One row of `strata layers --json`: the layer's record and how many images use it. */
export type LayerSummary = LayerRecord & {readonly images: number};

export class LayersCommand extends BaseCommand {
  static override paths = [['layers'], ['layer', 'ls']];
  static override usage = Command.Usage({
    category: 'Layers',
    description: 'list layers',
    details: 'Lists every layer, newest first: short id, entries, size (file bytes), how many images use it, and where it came from.',
    examples: [
      ['List layers', '$0 layers'],
      ['List layers as JSON', '$0 layers --json'],
    ],
  });

  json = Option.Boolean('--json', false, {description: 'print [{id, entries, bytes, created, source, images}] as JSON'});

  async run(): Promise<number> {
    const store = await this.openStore({readOnly: true});
    const users = new Map<string, number>();
    for (const {image} of await store.listImages())
      for (const l of new Set(image.layers)) users.set(l, (users.get(l) ?? 0) + 1);
    const layers: LayerSummary[] = (await store.listLayers())
      .map(l => ({...l, images: users.get(l.id) ?? 0}))
      .sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0) || (a.id < b.id ? -1 : 1));
    this.print(this.json, layers, list => formatTable([
      ['ID', 'ENTRIES', 'SIZE', 'IMAGES', 'CREATED', 'SOURCE'],
      ...list.map(l => [shortDigest(l.id), formatCount(l.entries), formatBytes(l.bytes), String(l.images), l.created.slice(0, 19).replace('T', ' '), l.source ?? '']),
    ], ['left', 'right', 'right', 'right']));
    return 0;
  }
}
