import {Command, Option, UsageError} from 'clipanion';
import type {Change} from '@strata/union';
import {BaseCommand} from '../BaseCommand.js';

export class DiffCommand extends BaseCommand {
  static override paths = [['diff']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'show what changed between a container and its image, or between two views',
    details: `
      With one argument, lists what the container changed in its image: \`A /path\` added, \`C /path\` changed (its content, metadata or kind, or something below it: the parents of a change are \`C\`), \`D /path\` deleted, sorted by path. Its cost follows the number of changes, not the size of the image.

      With two, compares the views A and B, each a container or an image (a name that is both means the container), and reports what B has that A has not (\`A\`), what differs (\`C\`) and what only A has (\`D\`). Subtrees that both share are skipped by their hash.
    `,
    examples: [
      ['What did the container web change?', '$0 diff web'],
      ['Compare two containers', '$0 diff web db'],
      ['Compare a container with another image, as JSON', '$0 diff app:2 web --json'],
    ],
  });

  a = Option.String({name: 'A'});
  b = Option.String({name: 'B', required: false});
  json = Option.Boolean('--json', false, {description: 'print [{kind, path}] as JSON'});

  async run(): Promise<number> {
    const {diffViews, openContainerView, openImageView, resolveContainer, resolveView, UnionError} = await import('@strata/union');
    const store = await this.openStore({readOnly: true});
    let changes: Change[];
    if (this.b === undefined) {
      const c = await resolveContainer(store, this.a).catch(async err => {
        if (err instanceof UnionError && err.code === 'UNKNOWN_CONTAINER' && await store.resolveImage(this.a).then(() => true, () => false))
          throw new UsageError(`${this.a} is an image; diff with one argument takes a container (or give two views)`);
        throw err;
      });
      changes = await diffViews(await openImageView(store, c.image), await openContainerView(store, c));
    } else {
      changes = await diffViews((await resolveView(store, this.a)).view, (await resolveView(store, this.b)).view);
    }
    this.print(this.json, changes, list => list.map(c => `${c.kind} ${this.shownName(c.path)}\n`).join(''));
    return 0;
  }
}
