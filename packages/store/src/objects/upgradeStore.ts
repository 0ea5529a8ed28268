import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type {LayerRecord, Store} from './Store.js';
import type {IndexOp} from '../index/Index.js';
import {PREFIX} from '../index/keys.js';
import {decodeRecord, encodeRecord} from '../index/values.js';

/**
 * One step of the store format: what turns a store of format `to - 1` into format `to`.
 * Every step is idempotent (it may be cut short by a kill and run again at the next
 * open), and `strata.json` names the new format only after the step's changes are durable.
 */
interface Upgrade {
  readonly to: number;
  readonly what: string;
  run(store: Store): void | Promise<void>;
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
  {
    to: 3,
    what: 'trees may mark directories implicit, names and xattr values are bytes, images may name a platform',
    // Every older tree and image is a format-3 object with the same bytes and digest: no
    // id changes. Older trees cannot tell a directory the source never named from one
    // with the default metadata, so each older layer record says which format stored it,
    // and its export keeps that format's rule for the root (exportLayer.ts).
    async run(store) {
      const ops: IndexOp[] = [];
      for (const [key, value] of await store.index.scan(PREFIX.layer)) {
        const record = decodeRecord<LayerRecord>(value);
        if (record.format === undefined) ops.push({type: 'put', key, value: encodeRecord({...record, format: 2})});
      }
      if (ops.length > 0) await store.index.commit(ops);
    },
  },
];

/**
 * Brings a store of format `from` up to the newest format, step by step, under the
 * store's lock (the caller holds it), then makes the changes durable with one syncfs.
 * The caller writes the new format into `strata.json` afterwards.
 */
export async function upgradeStore(store: Store, from: number): Promise<void> {
  for (const step of UPGRADES) if (step.to > from) await step.run(store);
  // One syncfs (coreutils `sync -f`) for every change; without it, sync(2) of everything.
  if (spawnSync('sync', ['-f', store.dir], {stdio: 'ignore'}).status !== 0) spawnSync('sync', [], {stdio: 'ignore'});
}
