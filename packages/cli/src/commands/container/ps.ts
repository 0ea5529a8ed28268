import {Command, Option} from 'clipanion';
import type {Digest, TagRef} from '@strata/store';
import {formatTable, shortDigest} from '../../render.js';
import {BaseCommand} from '../BaseCommand.js';

/** One row of `strata ps --json`. */
export interface ContainerSummary {
  readonly id: string;
  readonly name: string | null;
  readonly image: Digest;
  /** The image's tags, sorted. */
  readonly tags: readonly TagRef[];
  readonly created: string;
}

export class PsCommand extends BaseCommand {
  static override paths = [['ps']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'list containers',
    details: 'Lists every container with its short id, name, image (a tag, else the short image id) and creation time, oldest first.',
    examples: [
      ['List containers', '$0 ps'],
      ['List containers as JSON', '$0 ps --json'],
    ],
  });

  json = Option.Boolean('--json', false, {description: 'print [{id, name, image, tags, created}] as JSON'});

  async run(): Promise<number> {
    const store = await this.openStore({readOnly: true});
    const tags = await store.listTags();
    const list: ContainerSummary[] = (await store.listContainers())
      .map(c => ({id: c.id, name: c.name ?? null, image: c.image, tags: tags.filter(t => t.image === c.image).map(t => t.tag).sort(), created: c.created}))
      .sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : a.id < b.id ? -1 : 1));
    this.print(this.json, list, rows => formatTable([
      ['ID', 'NAME', 'IMAGE', 'CREATED'],
      ...rows.map(c => [c.id.slice(0, 12), c.name ?? '', c.tags[0] ?? shortDigest(c.image), c.created.slice(0, 19).replace('T', ' ')]),
    ]));
    return 0;
  }
}
