import {RegistryError, normalizeTag} from '@strata/registry';
import {StoreError} from '../errors.js';

/** A tag, always in full, normalised `name:tag` form (`alpine:latest`, `localhost:5000/team/app:1`). */
export type TagRef = string & {readonly __brand: 'TagRef'};

/**
 * Parses a tag in the docker reference grammar: `[HOST[:PORT]/]NAME[:TAG]`, `latest`
 * when no tag is given, as docker reads it. Docker Hub names are kept in docker's short
 * form, so `alpine`, `docker.io/alpine` and `docker.io/library/alpine:latest` are one tag;
 * other registries' names keep their host. Throws BAD_REFERENCE naming what is wrong.
 */
export function parseTag(s: string): TagRef {
  try {
    return normalizeTag(s) as TagRef;
  } catch (err) {
    if (err instanceof RegistryError) throw new StoreError('BAD_REFERENCE', err.message.replace('is not a valid image reference', 'is not a valid name:tag ([HOST[:PORT]/]NAME[:TAG])'), {cause: err});
    throw err;
  }
}
