import {Command, Option} from 'clipanion';
import type {Digest, TagRef} from '@strata/store';
import {formatBytes, formatTable, shortDigest} from '../../render.js';
import {BaseCommand} from '../BaseCommand.js';

/** One row of `strata images --json`. */
export interface ImageSummary {
  readonly id: Digest;
  readonly tags: readonly TagRef[];
  readonly layers: number;
  /** Sum of the file bytes of its layers (a file shadowed by a higher layer still counts). */
  readonly bytes: number;
}

export class ImagesCommand extends BaseCommand {
  static override paths = [['images'], ['image', 'ls']];
  static override usage = Command.Usage({
    category: 'Images',
    description: 'list images',
    details: 'Lists every image with its tag, short id, number of layers and size (the file bytes of its layers): one row per tag, as docker and podman do, so an image with three tags has three rows. Tagged rows come first, by tag; an untagged image is one row showing `<none>`. `--json` gives one entry per image with all its tags.',
    examples: [
      ['List images', '$0 images'],
      ['List images as JSON', '$0 images --json'],
    ],
  });

  json = Option.Boolean('--json', false, {description: 'print [{id, tags, layers, bytes}] as JSON'});

  async run(): Promise<number> {
    const store = await this.openStore({readOnly: true});
    const sizes = new Map((await store.listLayers()).map(l => [l.id, l.bytes]));
    const images: ImageSummary[] = (await store.listImages()).map(({id, image, tags}) => ({
      id,
      tags: [...tags].sort(),
      layers: image.layers.length,
      bytes: image.layers.reduce((sum, l) => sum + (sizes.get(l) ?? 0), 0),
    }));
    images.sort((a, b) => (a.tags.length === 0 ? 1 : 0) - (b.tags.length === 0 ? 1 : 0) || compare(a.tags[0] ?? a.id, b.tags[0] ?? b.id));
    this.print(this.json, images, list => formatTable([
      ['TAG', 'ID', 'LAYERS', 'SIZE'],
      ...list.flatMap(i => (i.tags.length > 0 ? i.tags : ['<none>']).map(tag => ({tag, i})))
        .sort((a, b) => (a.tag === '<none>' ? 1 : 0) - (b.tag === '<none>' ? 1 : 0) || compare(a.tag, b.tag))
        .map(({tag, i}) => [tag, shortDigest(i.id), String(i.layers), formatBytes(i.bytes)]),
    ], ['left', 'left', 'right', 'right']));
    return 0;
  }
}

/** Code-unit order: the same on every machine, whatever its locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
