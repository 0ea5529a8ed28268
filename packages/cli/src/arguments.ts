import {UsageError} from 'clipanion';
import type {TagRef} from '@strata/store';

/**
 * Parses a NAME:TAG argument. A malformed one is a usage error (exit 2, one line),
 * checked before the store is opened so that nothing is written.
 */
export async function parseTagArgument(s: string): Promise<TagRef> {
  const {parseTag, StoreError} = await import('@strata/store');
  try {
    return parseTag(s);
  } catch (err) {
    if (err instanceof StoreError && err.code === 'BAD_REFERENCE') throw new UsageError(err.message);
    throw err;
  }
}
