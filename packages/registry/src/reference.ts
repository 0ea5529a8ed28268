import {RegistryError} from './errors.js';

/**
 * An image name in the docker reference grammar (distribution/reference `reference.go`),
 * normalised as docker, podman and skopeo read it: no domain means `docker.io`, and a
 * one-component name on docker.io lives under `library/`.
 */
export interface Reference {
  /** `host[:port]`, e.g. `docker.io`, `localhost:5000`, `[::1]:5000`. */
  readonly domain: string;
  /** The repository path inside the registry, e.g. `library/alpine`, `team/app`. */
  readonly path: string;
  readonly tag?: string;
  /** `algorithm:hex`, e.g. `sha256:…`. */
  readonly digest?: string;
}

export const DOCKER_HUB = 'docker.io';

// reference/regexp.go, written out: a path component, a domain, a tag, a digest.
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const PATH_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$/;
const NAME_MAX = 255;

/**
 * Parses `[DOMAIN/]PATH[:TAG][@DIGEST]` and normalises it (`alpine` ->
 * `docker.io/library/alpine`, `index.docker.io` -> `docker.io`). A first component is a
 * domain when it has a `.` or a `:`, is `localhost`, or has an uppercase letter, as
 * docker decides. Throws BAD_REFERENCE saying which part is wrong.
 */
export function parseReference(s: string): Reference {
  const bad = (why: string) => new RegistryError('BAD_REFERENCE', `"${s}" is not a valid image reference: ${why}`);
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw bad('the digest must be algorithm:hex');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw bad('the tag must be letters, digits and . _ -, at most 128, not starting with . or -');
  }
  if (rest === '') throw bad('it names no repository');
  let domain = DOCKER_HUB;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (!DOMAIN_RE.test(domain)) throw bad(`"${domain}" is not a registry host[:port]`);
  if (domain === 'index.docker.io') domain = DOCKER_HUB;
  if (domain === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  if (path !== path.toLowerCase()) throw bad('the repository name must be lowercase');
  if (!PATH_RE.test(path)) throw bad('the repository name must be lowercase letters, digits and . _ - separated by /');
  if (domain.length + 1 + path.length > NAME_MAX) throw bad(`the name is longer than ${NAME_MAX} characters`);
  return {domain, path, ...(tag !== undefined ? {tag} : {}), ...(digest !== undefined ? {digest} : {})};
}

/** `domain/path`, the full repository name. */
export function repositoryName(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

/**
 * The name as docker shows it: Docker Hub's domain and `library/` left out
 * (`docker.io/library/alpine` -> `alpine`, `docker.io/org/app` -> `org/app`), every
 * other registry's name in full.
 */
export function familiarName(ref: Reference): string {
  if (ref.domain !== DOCKER_HUB) return repositoryName(ref);
  return ref.path.startsWith('library/') && ref.path.indexOf('/', 8) < 0 ? ref.path.slice(8) : ref.path;
}

/** The whole reference in full, e.g. `localhost:5000/team/app:1@sha256:…`. */
export function formatReference(ref: Reference): string {
  return `${repositoryName(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/**
 * The name:tag strata keys a tag by: the familiar name and the tag (`latest` when none),
 * so `alpine`, `docker.io/alpine` and `docker.io/library/alpine:latest` are one tag.
 * Throws BAD_REFERENCE, also for a reference by digest (a tag names a tag).
 */
export function normalizeTag(s: string): string {
  const ref = parseReference(s);
  if (ref.digest !== undefined)
    throw new RegistryError('BAD_REFERENCE', `"${s}" names a digest; a tag is NAME[:TAG]`);
  return `${familiarName(ref)}:${ref.tag ?? 'latest'}`;
}
