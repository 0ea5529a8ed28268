import {StoreError} from '../errors.js';
import {type ImageConfig, type Platform, isPlatform} from '../objects/image.js';
import type {Compression} from './compress.js';

/** OCI image-spec media types (media-types.md) and docker's, which the docker archive uses. */
export const MEDIA = {
  ociLayout: '1.0.0',
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: {none: 'application/vnd.oci.image.layer.v1.tar', gzip: 'application/vnd.oci.image.layer.v1.tar+gzip', zstd: 'application/vnd.oci.image.layer.v1.tar+zstd'} as Record<Compression, string>,
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

/** Layer media types strata reads (compression is sniffed from the bytes anyway). */
export const LAYER_MEDIA_TYPES = new Set([
  ...Object.values(MEDIA.layer),
  'application/vnd.oci.image.layer.nondistributable.v1.tar', 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip', 'application/vnd.docker.image.rootfs.diff.tar', 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);

/** The annotation an OCI layout's index uses to name an image (annotations.md). */
export const REF_NAME = 'org.opencontainers.image.ref.name';

/** A content descriptor (descriptor.md). */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly platform?: {readonly architecture?: string; readonly os?: string; readonly variant?: string};
}

/** GOARCH names of Node's process.arch values that differ. */
const GOARCH: Record<string, string> = {x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x'};

/** The host's platform: what an export names for an image that records none. */
export function hostPlatform(): Platform {
  return {architecture: GOARCH[process.arch] ?? process.arch, os: 'linux'};
}

/**
 * The OCI image config (config.md) of an image with these DiffIDs. Keys in a fixed order
 * and only fields the image has, so the same image gives the same bytes.
 */
export function toOciConfig(config: ImageConfig, diffIds: readonly string[], platform: Platform = hostPlatform()): Buffer {
  const run: Record<string, unknown> = {};
  if (config.user !== undefined) run.User = config.user;
  if (config.env !== undefined) run.Env = config.env;
  if (config.entrypoint !== undefined) run.Entrypoint = config.entrypoint;
  if (config.cmd !== undefined) run.Cmd = config.cmd;
  if (config.workingDir !== undefined) run.WorkingDir = config.workingDir;
  if (config.labels !== undefined) run.Labels = sortedRecord(config.labels);
  const out: Record<string, unknown> = {...platformFields(platform), config: run, rootfs: {type: 'layers', diff_ids: diffIds}};
  if (config.history !== undefined) {
    out.history = config.history.map(h => {
      const e: Record<string, unknown> = {};
      if (h.created !== undefined) e.created = h.created;
      if (h.createdBy !== undefined) e.created_by = h.createdBy;
      if (h.comment !== undefined) e.comment = h.comment;
      if (h.emptyLayer) e.empty_layer = true;
      return e;
    });
  }
  return Buffer.from(JSON.stringify(out), 'utf8');
}

/**
 * Reads an OCI (or docker) image config: what strata keeps of it and its DiffIDs.
 * Throws BAD_MANIFEST when it is not a config. Unknown fields are ignored.
 */
export function fromOciConfig(bytes: Buffer, what: string): {config: ImageConfig; diffIds: string[]; platform?: Platform} {
  const v = parseJson(bytes, what) as {config?: Record<string, unknown> | null; rootfs?: {type?: unknown; diff_ids?: unknown}; history?: unknown; architecture?: unknown; os?: unknown; variant?: unknown};
  const diffIds = v.rootfs?.diff_ids;
  if (v.rootfs?.type !== 'layers' || !Array.isArray(diffIds) || !diffIds.every(d => typeof d === 'string'))
    throw new StoreError('BAD_MANIFEST', `${what} is not an image config (no rootfs.diff_ids)`);
  const run = v.config ?? {};
  const strings = (x: unknown) => (Array.isArray(x) && x.every(s => typeof s === 'string') ? (x as string[]) : undefined);
  const str = (x: unknown) => (typeof x === 'string' ? x : undefined);
  const labels = run.Labels && typeof run.Labels === 'object' && Object.values(run.Labels).every(s => typeof s === 'string') ? sortedRecord(run.Labels as Record<string, string>) : undefined;
  const history = Array.isArray(v.history) ? (v.history as Record<string, unknown>[]).filter(h => h && typeof h === 'object').map(h => ({
    ...(str(h.created) !== undefined ? {created: str(h.created)} : {}),
    ...(str(h.created_by) !== undefined ? {createdBy: str(h.created_by)} : {}),
    ...(str(h.comment) !== undefined ? {comment: str(h.comment)} : {}),
    ...(h.empty_layer === true ? {emptyLayer: true} : {}),
  })) : undefined;
  const config: ImageConfig = {
    ...(strings(run.Env) ? {env: strings(run.Env)} : {}),
    ...(strings(run.Cmd) ? {cmd: strings(run.Cmd)} : {}),
    ...(strings(run.Entrypoint) ? {entrypoint: strings(run.Entrypoint)} : {}),
    ...(str(run.WorkingDir) !== undefined ? {workingDir: str(run.WorkingDir)} : {}),
    ...(str(run.User) !== undefined ? {user: str(run.User)} : {}),
    ...(labels ? {labels} : {}),
    ...(history ? {history} : {}),
  };
  // config.md: architecture and os are required, variant optional. A config without them
  // (some hand-made ones) gives an image that names no platform, as strata's own do.
  const platform = {architecture: v.architecture, os: v.os, ...(v.variant !== undefined && v.variant !== '' ? {variant: v.variant} : {})};
  return {config, diffIds: diffIds as string[], ...(isPlatform(platform) ? {platform} : {})};
}

/** architecture, os and variant (if any), in the order OCI's config and index list them. */
export function platformFields(p: Platform): Platform {
  return {architecture: p.architecture, os: p.os, ...(p.variant ? {variant: p.variant} : {})};
}

/** Parses a JSON document of an image. Throws BAD_MANIFEST. */
export function parseJson(bytes: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new StoreError('BAD_MANIFEST', `${what} is not valid JSON`, {cause: err});
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new StoreError('BAD_MANIFEST', `${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

/** Checks a descriptor's shape; `sha256:` digests only (the algorithm every tool writes). Throws BAD_MANIFEST. */
export function checkDescriptor(d: unknown, what: string): Descriptor {
  const v = d as Partial<Descriptor> | undefined;
  if (!v || typeof v !== 'object' || typeof v.mediaType !== 'string' || typeof v.digest !== 'string' || typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0)
    throw new StoreError('BAD_MANIFEST', `${what} is not a valid descriptor`);
  if (!/^sha256:[0-9a-f]{64}$/.test(v.digest))
    throw new StoreError('BAD_MANIFEST', `${what} has digest "${v.digest}"; strata reads sha256 digests only`);
  return v as Descriptor;
}

function sortedRecord(r: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.keys(r).sort().map(k => [k, r[k]!]));
}
