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
  /** Where the container is mounted now (from /proc/self/mountinfo), or null. */
  readonly mountPoint: string | null;
  /** `running` while a process runs in it (runc says so), `mounted`, or `stopped`. */
  readonly status: 'running' | 'mounted' | 'stopped';
}

export class PsCommand extends BaseCommand {
  static override paths = [['ps']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'list containers',
    details: 'Lists every container with its short id, name, image (a tag, else the short image id), creation time and status, oldest first: `running` while `strata run` runs a process in it, `mounted` while it is mounted (`strata mount`), else `stopped`. The status is read from the kernel\'s mount table and runc each time, never from a record.',
    examples: [
      ['List containers', '$0 ps'],
      ['List containers as JSON', '$0 ps --json'],
    ],
  });

  json = Option.Boolean('--json', false, {description: 'print [{id, name, image, tags, created, mountPoint, status}] as JSON'});

  async run(): Promise<number> {
    const {findContainerMount, readMountInfo, runningPid} = await import('@strata/union');
    const store = await this.openStore({readOnly: true});
    const tags = await store.listTags();
    const mounts = readMountInfo(); // read once for every container
    const list: ContainerSummary[] = (await store.listContainers())
      .map(c => {
        const mount = findContainerMount(store, c.id, mounts);
        const status = !mount ? 'stopped' as const : runningPid(c) !== undefined ? 'running' as const : 'mounted' as const;
        return {id: c.id, name: c.name ?? null, image: c.image, tags: tags.filter(t => t.image === c.image).map(t => t.tag).sort(), created: c.created, mountPoint: mount?.mountPoint ?? null, status};
      })
      .sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : a.id < b.id ? -1 : 1));
    this.print(this.json, list, rows => formatTable([
      ['ID', 'NAME', 'IMAGE', 'CREATED', 'STATUS'],
      ...rows.map(c => [c.id.slice(0, 12), c.name ?? '', c.tags[0] ?? shortDigest(c.image), c.created.slice(0, 19).replace('T', ' '), c.status]),
    ]));
    return 0;
  }
}
