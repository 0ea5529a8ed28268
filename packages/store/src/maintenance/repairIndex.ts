import * as path from 'node:path';
import {Level} from 'level';
import {StoreError, isLevelLocked} from '../errors.js';

/**
 * Rebuilds a damaged LevelDB index with LevelDB's own repair (RepairDB): it reads every
 * table and log it can, writes a new manifest, and moves files it cannot read to
 * `index/lost/` instead of deleting them. Entries in damaged blocks are gone afterwards;
 * `verifyStore` then names what is missing and which images it damaged.
 * The caller must have closed its handle. Throws STORE_LOCKED when another process has
 * the store open (repairing under a live writer would lose its writes).
 */
export async function repairIndex(storeDir: string): Promise<void> {
  const location = path.join(path.resolve(storeDir), 'index');
  const probe = new Level<string, Buffer>(location, {keyEncoding: 'utf8', valueEncoding: 'buffer'});
  try {
    await probe.open();
    await probe.close();
  } catch (err) {
    if (isLevelLocked(err)) throw new StoreError('STORE_LOCKED', 'the store is open in another strata process; repair it when that one has finished', {cause: err});
    // Unopenable: exactly what repair is for.
  }
  await (Level as unknown as {repair(location: string): Promise<void>}).repair(location);
}
