import {type Digest, hashBytes, isDigest} from './digest.js';
import {StoreError} from '../errors.js';

/** What an OCI image config says about running the image; every field optional. */
export interface ImageConfig {
  readonly env?: readonly string[];
  readonly cmd?: readonly string[];
  readonly entrypoint?: readonly string[];
  readonly workingDir?: string;
  readonly user?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly history?: readonly {readonly createdBy?: string; readonly comment?: string; readonly created?: string; readonly emptyLayer?: boolean}[];
}

/**
 * The platform an image runs on, as OCI's config and index name it (image-index.md,
 * "platform"): GOARCH and GOOS values, and the CPU variant where one is given (`v8`).
 */
export interface Platform {
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
}

/**
 * An image: layer ids bottom first, its config, and its platform when the source named
 * one. Named by the hash of `encodeImage`, so the same layers for two platforms are two images.
 */
export interface Image {
  readonly layers: readonly Digest[];
  readonly config: ImageConfig;
  readonly platform?: Platform;
}

/** JSON with object keys sorted and no whitespace: one text for one value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const keys = Object.keys(value).filter(k => (value as Record<string, unknown>)[k] !== undefined).sort();
    return `{${keys.map(k => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The canonical bytes of an image (docs/format.md, "Image"). */
export function encodeImage(image: Image): Buffer {
  // No platform, no key: images made before platforms were kept keep their bytes and ids.
  return Buffer.from(canonicalJson({config: image.config, layers: image.layers, platform: image.platform, strata: 1}), 'utf8');
}

export function hashImage(image: Image): {digest: Digest; bytes: Buffer} {
  const bytes = encodeImage(image);
  return {digest: hashBytes(bytes), bytes};
}

export function decodeImage(buf: Buffer, what = 'image'): Image {
  let v: {layers?: unknown; config?: unknown; platform?: unknown; strata?: unknown};
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new StoreError('OBJECT_CORRUPT', `${what} is not valid JSON`, {cause: err});
  }
  if (v.strata !== 1 || !Array.isArray(v.layers) || !v.layers.every(l => typeof l === 'string' && isDigest(l)) || typeof v.config !== 'object' || !v.config)
    throw new StoreError('OBJECT_CORRUPT', `${what} is not a strata image`);
  if (v.platform !== undefined && !isPlatform(v.platform)) throw new StoreError('OBJECT_CORRUPT', `${what} has a malformed platform`);
  return {layers: v.layers as Digest[], config: v.config as ImageConfig, ...(v.platform ? {platform: v.platform} : {})};
}

/** Whether a value is a platform record (architecture and os strings, an optional variant string, nothing else). */
export function isPlatform(v: unknown): v is Platform {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return false;
  const p = v as Record<string, unknown>;
  return typeof p.architecture === 'string' && p.architecture !== '' && typeof p.os === 'string' && p.os !== ''
    && (p.variant === undefined || (typeof p.variant === 'string' && p.variant !== ''))
    && Object.keys(p).every(k => k === 'architecture' || k === 'os' || k === 'variant');
}


/**
 * The chain id of a layer stack (as OCI's ChainID, with BLAKE3): the first layer's id,
 * then b3(chain + " " + next layer) for each layer above. Equal stacks, equal chains.
 */
export function chainId(layers: readonly Digest[]): Digest | undefined {
  let chain: Digest | undefined;
  for (const l of layers) chain = chain ? hashBytes(Buffer.from(`${chain} ${l}`, 'utf8')) : l;
  return chain;
}
