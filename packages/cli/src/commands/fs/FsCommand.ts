import {Option, UsageError} from 'clipanion';
import type {ViewPath} from '@strata/union';
import {inView, openContainer, viewPathArgument} from '../../viewArgs.js';
import {BaseCommand} from '../BaseCommand.js';

/**
 * What the `strata fs` commands share: the CONTAINER positional, paths parsed before the
 * store opens, and errors that name the container. `strata fs web ls /etc` is accepted
 * as `strata fs ls web /etc` (see StrataCli).
 */
export abstract class FsCommand extends BaseCommand {
  container = Option.String({name: 'CONTAINER'});

  /** Parses every path argument first, then runs `work` on the container's view. */
  protected async withView<T>(paths: readonly string[], work: (view: import('@strata/union').UnionView, paths: ViewPath[]) => Promise<T>): Promise<T> {
    const parsed: ViewPath[] = [];
    for (const p of paths) parsed.push(await viewPathArgument(p));
    const store = await this.openStore();
    const {view, label} = await openContainer(store, this.container);
    return inView(label, () => work(view, parsed));
  }
}

/** An octal permission argument ("755", "0644"); anything else is a usage error. */
export function parseMode(s: string): number {
  if (!/^0?[0-7]{1,4}$/.test(s)) throw new UsageError(`mode "${s}" is not an octal number like 755 or 0644`);
  return parseInt(s, 8);
}
