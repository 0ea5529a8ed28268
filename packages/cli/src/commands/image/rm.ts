import {Command, Option} from 'clipanion';
import type {Digest, TagRef} from '@strata/store';
import {BaseCommand} from '../BaseCommand.js';

/** What `strata image rm` did to one argument. */
export interface RemovedImage {
  readonly image: Digest;
  /** Tags that no longer exist. */
  readonly untagged: readonly TagRef[];
  /** False when only a tag went and the image keeps other tags. */
  readonly deleted: boolean;
}

export class ImageRmCommand extends BaseCommand {
  static override paths = [['image', 'rm']];
  static override usage = Command.Usage({
    category: 'Images',
    description: 'remove images',
    details: `
      Each IMAGE is a tag or an id. Given a tag of an image that has other tags, only that tag is removed; otherwise the image and all its tags are. An image that a container uses is not removed (remove the container first); then nothing is removed.

      Layers and files stay in the store until \`strata gc\` finds nothing else uses them.
    `,
    examples: [
      ['Remove an image by tag', '$0 image rm app:1'],
      ['Remove two images', '$0 image rm app:1 9f1c2a'],
    ],
  });

  images = Option.Rest({name: 'IMAGE', required: 1});
  json = Option.Boolean('--json', false, {description: 'print [{image, untagged, deleted}] as JSON'});

  async run(): Promise<number> {
    const store = await this.openStore();
    const {StoreError, parseTag} = await import('@strata/store');
    // Resolve and check every argument before removing anything: all or nothing.
    const tags = await store.listTags();
    const containers = await store.listContainers();
    const plan = new Map<Digest, Set<TagRef> | 'all'>();
    for (const ref of this.images) {
      const {id} = await store.resolveImage(ref);
      const tagsOf = tags.filter(t => t.image === id).map(t => t.tag);
      const user = containers.find(c => c.image === id);
      const asTag = tagsOf.find(t => t === tagOrUndefined(parseTag, ref));
      const removal = plan.get(id);
      if (asTag && removal !== 'all') plan.set(id, new Set([...(removal ?? []), asTag]));
      else plan.set(id, 'all');
      const wanted = plan.get(id)!;
      const deletes = wanted === 'all' || tagsOf.every(t => wanted.has(t));
      if (deletes && user)
        throw new StoreError('IN_USE', `image ${ref} is used by container ${user.name ?? user.id}; remove the container first`);
    }
    const removed: RemovedImage[] = [];
    for (const [id, wanted] of plan) {
      const tagsOf = tags.filter(t => t.image === id).map(t => t.tag);
      if (wanted !== 'all' && !tagsOf.every(t => wanted.has(t))) {
        for (const t of wanted) await store.deleteTag(t);
        removed.push({image: id, untagged: [...wanted].sort(), deleted: false});
      } else {
        removed.push({image: id, untagged: (await store.deleteImage(id)).sort(), deleted: true});
      }
    }
    this.print(this.json, removed, list => list.map(r =>
      r.deleted ? `deleted ${r.image}${r.untagged.length > 0 ? ` (was ${r.untagged.join(', ')})` : ''}\n` : `untagged ${r.untagged.join(', ')}\n`).join(''));
    return 0;
  }
}

function tagOrUndefined(parse: (s: string) => TagRef, ref: string): TagRef | undefined {
  try {
    return parse(ref);
  } catch {
    return undefined;
  }
}
