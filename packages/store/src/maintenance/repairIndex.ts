import * as path from 'node:path';
import {Index} from '../index/Index.js';

/**
 * Rebuilds a damaged LevelDB index (index/Index.ts, repair): files it cannot read go to
 * `index/lost/` instead of being deleted. Entries in damaged blocks are gone afterwards;
 * `verifyStore` then names what is missing and which images it damaged.
 * The caller must have closed its handle. Throws STORE_LOCKED when another process has
 * the store open.
 */
export async function repairIndex(storeDir: string): Promise<void> {
  await Index.repair(path.join(path.resolve(storeDir), 'index'));
}
