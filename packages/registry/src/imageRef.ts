import {RegistryError} from './errors.js';
import {type Reference, parseReference} from './reference.js';

/**
 * Where an image is, as skopeo and podman write it (containers-transports(5)):
 * `docker://NAME[:TAG|@DIGEST]`, `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`,
 * `docker-archive:FILE[:NAME:TAG]`.
 */
export type ImageRef =
  | {readonly transport: 'docker'; readonly ref: Reference}
  | {readonly transport: 'oci'; readonly path: string; readonly ref?: string}
  | {readonly transport: 'oci-archive'; readonly path: string; readonly ref?: string}
  | {readonly transport: 'docker-archive'; readonly path: string; readonly ref?: string};

export type Transport = ImageRef['transport'];

const PATH_TRANSPORTS = ['oci', 'oci-archive', 'docker-archive'] as const;

/**
 * Parses a transport-qualified image reference. Without a transport, `fallback` decides:
 * `docker` reads the string as a registry reference (`strata pull alpine`), `path` returns
 * undefined so the caller can treat it as a plain path (`strata image import ./dir`).
 * The path of `oci:`/`oci-archive:`/`docker-archive:` ends at its first `:`, as in
 * containers/image. Throws BAD_REFERENCE.
 */
export function parseImageRef(s: string, fallback: 'docker'): ImageRef;
export function parseImageRef(s: string, fallback: 'path'): ImageRef | undefined;
export function parseImageRef(s: string, fallback: 'docker' | 'path'): ImageRef | undefined {
  if (s.startsWith('docker://')) return {transport: 'docker', ref: parseReference(s.slice('docker://'.length))};
  for (const transport of PATH_TRANSPORTS) {
    if (!s.startsWith(`${transport}:`)) continue;
    const body = s.slice(transport.length + 1);
    const colon = body.indexOf(':');
    const path = colon < 0 ? body : body.slice(0, colon);
    const ref = colon < 0 ? undefined : body.slice(colon + 1);
    if (path === '') throw new RegistryError('BAD_REFERENCE', `"${s}" names no ${transport === 'oci' ? 'directory' : 'file'}`);
    if (ref === '') throw new RegistryError('BAD_REFERENCE', `"${s}" ends in ":" but names no image after it`);
    return {transport, path, ...(ref !== undefined ? {ref} : {})};
  }
  const foreign = /^([a-z-]+):/.exec(s)?.[1];
  if (foreign !== undefined && KNOWN_FOREIGN.has(foreign))
    throw new RegistryError('BAD_REFERENCE', `"${s}": strata does not read the ${foreign} transport (it reads docker://, oci:, oci-archive:, docker-archive:)`);
  if (fallback === 'path') return undefined;
  return {transport: 'docker', ref: parseReference(s)};
}

const KNOWN_FOREIGN = new Set(['containers-storage', 'dir', 'docker-daemon', 'ostree', 'sif', 'tarball']);
