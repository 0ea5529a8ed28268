import {StoreError} from '../errors.js';

/** A tag, always in full `name:tag` form. */
export type TagRef = string & {readonly __brand: 'TagRef'};

// The distribution spec's grammar for repository names and tags, without a registry host.
const NAME_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * Parses `name:tag` (or `name`, which means `name:latest`, as docker reads it).
 * Throws BAD_REFERENCE naming what is wrong.
 */
export function parseTag(s: string): TagRef {
  const colon = s.lastIndexOf(':');
  const slash = s.lastIndexOf('/');
  const [name, tag] = colon > slash ? [s.slice(0, colon), s.slice(colon + 1)] : [s, 'latest'];
  if (!NAME_RE.test(name))
    throw new StoreError('BAD_REFERENCE', `"${s}" is not a valid name:tag (the name must be lowercase letters, digits and . _ - /)`);
  if (!TAG_RE.test(tag))
    throw new StoreError('BAD_REFERENCE', `"${s}" is not a valid name:tag (the tag must be letters, digits and . _ -, at most 128)`);
  return `${name}:${tag}` as TagRef;
}
