import {Command, Option, UsageError} from 'clipanion';
import {parseTagArgument} from '../../arguments.js';
import {formatBytes} from '../../render.js';
import {BaseCommand} from '../BaseCommand.js';

/** `strata commit --json`. */
export interface CommitReport {
  readonly layer: string;
  readonly image: string;
  readonly tag?: string;
  /** Files and other entries of the new layer (its changes, whiteouts included). */
  readonly entries: number;
  readonly newBytes: number;
}

export class CommitCommand extends BaseCommand {
  static override paths = [['commit']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'freeze a container\'s changes into a layer and an image',
    details: 'Stores the container\'s writable layer as a read-only layer (deletions kept as whiteouts) and an image made of the container\'s image layers plus that one, which shows exactly what the container showed. The same changes give the same layer id. The cost follows the size of the changes. The container goes on as it was.',
    examples: [
      ['Commit a container and tag the image', '$0 commit web --tag web:2'],
      ['Commit with a message, as JSON', '$0 commit web --tag web:2 --message "add config" --json'],
    ],
  });

  container = Option.String({name: 'CONTAINER'});
  tag = Option.String('--tag', {description: 'tag the new image NAME:TAG'});
  message = Option.String('--message,-m', {description: 'a comment for the image history'});
  json = Option.Boolean('--json', false, {description: 'print {layer, image, tag, entries, newBytes} as JSON'});

  async run(): Promise<number> {
    const tag = this.tag !== undefined ? await parseTagArgument(this.tag) : undefined;
    if (this.message !== undefined && this.message.trim() === '') throw new UsageError('--message needs some text');
    const {commitContainer, resolveContainer} = await import('@strata/union');
    const store = await this.openStore();
    const c = await resolveContainer(store, this.container);
    const r = await commitContainer(store, c, {...(tag ? {tag} : {}), ...(this.message !== undefined ? {message: this.message} : {})});
    const report: CommitReport = {layer: r.layer.id, image: r.image, ...(tag ? {tag} : {}), entries: r.layer.entries, newBytes: r.newBytes};
    this.print(this.json, report, x => `layer ${x.layer}\nimage ${x.image}${x.tag ? ` (${x.tag})` : ''}\nstored ${formatBytes(x.newBytes)} new\n`);
    if (!tag && !(await store.listTags()).some(t => t.image === r.image))
      this.note(`strata: image ${r.image.slice(3, 15)} has no tag, so the next "strata gc" removes it; commit with --tag NAME:TAG, or "strata image tag ${r.image.slice(3, 15)} NAME:TAG"`);
    return 0;
  }
}
