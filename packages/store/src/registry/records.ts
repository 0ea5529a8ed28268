import type {Digest} from '../objects/digest.js';
import {KEY, type Store} from '../objects/Store.js';
import type {Compression} from '../oci/compress.js';

// The index records that keep registry digests stable (docs/format.md, "index keys").
// All are metadata, never roots: gc drops each with the layer, blob or image it is about.

/** How a layer looks as a registry blob in one compression: the descriptor and the DiffID. */
export interface LayerBlobRecord {
  /** sha256 of the compressed bytes, `sha256:<hex>`. */
  readonly digest: string;
  readonly size: number;
  readonly mediaType: string;
  /** sha256 of the plain tar. */
  readonly diffId: string;
}

/** A repository of a registry, as a place a blob was seen. */
export interface BlobLocation {
  readonly registry: string;
  readonly repo: string;
}

/** Where a pulled image came from, with the bytes that name it there (kept as blobs). */
export interface ImageSource {
  readonly registry: string;
  readonly repo: string;
  readonly tag?: string;
  readonly manifest: {readonly digest: string; readonly mediaType: string; readonly blob: Digest};
  readonly config: {readonly digest: string; readonly blob: Digest};
  readonly index?: {readonly digest: string; readonly mediaType: string; readonly blob: Digest};
}

type Put = {type: 'put'; key: string; value: Buffer};

/** Locations kept per blob, newest first: enough mount candidates (docker tries at most 4). */
const LOCATIONS_MAX = 8;

const json = (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8');

/** `rd:<layer>:<compression>`: what strata's own (deterministic) export of the layer in that compression is. */
export function layerBlobKey(layer: Digest, compression: Compression): string {
  return `${KEY.layerBlob}${layer}:${compression}`;
}

export async function getLayerBlob(store: Store, layer: Digest, compression: Compression): Promise<LayerBlobRecord | undefined> {
  const v = await store.getRaw(layerBlobKey(layer, compression));
  return v && (JSON.parse(v.toString('utf8')) as LayerBlobRecord);
}

export function layerBlobOp(layer: Digest, compression: Compression, record: LayerBlobRecord): Put {
  return {type: 'put', key: layerBlobKey(layer, compression), value: json(record)};
}

/** `rb:<sha256>` -> layer: a compressed digest or DiffID the store knows a layer by. */
export function blobLayerOp(sha256: string, layer: Digest): Put {
  return {type: 'put', key: KEY.blobLayer + sha256, value: Buffer.from(layer, 'utf8')};
}

/** The layer a compressed digest or DiffID names, when the store still has that layer. */
export async function layerOfBlob(store: Store, sha256: string): Promise<Digest | undefined> {
  const v = await store.getRaw(KEY.blobLayer + sha256);
  const layer = v?.toString('utf8') as Digest | undefined;
  return layer && (await store.getLayer(layer)) ? layer : undefined;
}

/** `rs:<sha256>`: the repositories a blob was seen in, newest first. */
export async function blobLocations(store: Store, sha256: string): Promise<BlobLocation[]> {
  const v = await store.getRaw(KEY.blobRepos + sha256);
  return v ? (JSON.parse(v.toString('utf8')) as BlobLocation[]) : [];
}

/** The record that puts `seen` first among a blob's locations (`known` are the current ones). */
export function blobLocationsOp(sha256: string, known: readonly BlobLocation[], seen: BlobLocation): Put {
  const rest = known.filter(l => l.registry !== seen.registry || l.repo !== seen.repo);
  return {type: 'put', key: KEY.blobRepos + sha256, value: json([seen, ...rest].slice(0, LOCATIONS_MAX))};
}

/** `src:<image>`: where a pulled image came from. */
export async function getImageSource(store: Store, image: Digest): Promise<ImageSource | undefined> {
  const v = await store.getRaw(KEY.imageSource + image);
  return v && (JSON.parse(v.toString('utf8')) as ImageSource);
}

export function imageSourceOp(image: Digest, source: ImageSource): Put {
  return {type: 'put', key: KEY.imageSource + image, value: json(source)};
}

/** The blobs a source record keeps (the original manifest, config and index bytes): gc's edges. */
export function sourceBlobs(source: ImageSource): Digest[] {
  return [source.manifest.blob, source.config.blob, ...(source.index ? [source.index.blob] : [])];
}
