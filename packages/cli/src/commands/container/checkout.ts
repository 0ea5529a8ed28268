import * as path from 'node:path';
import {Command, Option} from 'clipanion';
import type {CheckoutResult} from '@strata/union';
import {importProgressBar} from '../../progress.js';
import {formatBytes, plural} from '../../render.js';
import {BaseCommand} from '../BaseCommand.js';

export class CheckoutCommand extends BaseCommand {
  static override paths = [['checkout']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'write what a container or image shows into a directory',
    details: 'Materialises the merged view of VIEW (a container, else an image) into DIR, which must be missing or empty: files, directories, symlinks and hardlinks with their modes and times (and owners when run as root). Files are copied (reflinked where the filesystem can), never hardlinked to the store, so changing the checkout changes nothing in strata. Device nodes that cannot be made (not root) are listed as skipped.',
    examples: [
      ['Check out a container', '$0 checkout web ./web-root'],
      ['Check out an image, as JSON', '$0 checkout app:1 /tmp/app --json'],
    ],
  });

  viewRef = Option.String({name: 'VIEW'});
  dir = Option.String({name: 'DIR'});
  json = Option.Boolean('--json', false, {description: 'print {dir, files, dirs, symlinks, hardlinks, bytes, skipped} as JSON'});

  async run(): Promise<number> {
    const {checkout, resolveView} = await import('@strata/union');
    const store = await this.openStore({readOnly: true});
    const {view} = await resolveView(store, this.viewRef);
    const dir = path.resolve(this.dir);
    const bar = await importProgressBar(this.context.stderr, this.context.stdout, undefined, 'checking out');
    let result: CheckoutResult;
    try {
      result = await checkout(store, view, dir, {onProgress: (files, bytes) => bar.onProgress({files, bytes})});
    } finally {
      bar.stop();
    }
    this.print(this.json, {dir, ...result}, r => `${plural(r.files, 'file', 'files')} (${formatBytes(r.bytes)}), ${plural(r.dirs, 'directory', 'directories')}, ${plural(r.symlinks, 'symlink', 'symlinks')}, ${plural(r.hardlinks, 'hardlink', 'hardlinks')} in ${r.dir}\n`
      + (r.skipped.length > 0 ? `skipped (mknod needs root): ${r.skipped.join(' ')}\n` : ''));
    return 0;
  }
}
