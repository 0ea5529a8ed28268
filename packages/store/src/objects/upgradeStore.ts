import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type {Store} from './Store.js';

/**
 * One step of the store format: what turns a store of format `to - 1` into format `to`.
 * Every step is idempotent (it may be cut short by a kill and run again at the next
 * open), and `strata.json` names the new format only after the step's changes are durable.
 */
interface Upgrade {
  readonly to: number;
  readonly what: string;
  run(store: Store): void;
}

const UPGRADES: readonly Upgrade[] = [
  {
    to: 2,
    what: 'writable layers move from `.wh.` marker files to the kernel overlayfs form',
    run(store) {
      const containers = path.join(store.dir, 'containers');
      for (const id of fs.existsSync(containers) ? fs.readdirSync(containers) : [])
        store.upper.upgradeAufsUpper(path.join(containers, id, 'upper'));
    },
  },
];

/**
 * Brings a store of format `from` up to the newest format, step by step, under the
 * store's lock (the caller holds it), then makes the changes durable with one syncfs.
 * The caller writes the new format into `strata.json` afterwards.
 */
export async function upgradeStore(store: Store, from: number): Promise<void> {
  for (const step of UPGRADES) if (step.to > from) step.run(store);
  // One syncfs (coreutils `sync -f`) for every change; without it, sync(2) of everything.
  if (spawnSync('sync', ['-f', store.dir], {stdio: 'ignore'}).status !== 0) spawnSync('sync', [], {stdio: 'ignore'});
}
