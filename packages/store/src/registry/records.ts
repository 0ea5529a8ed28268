import type {Digest} from '../objects/digest.js';
import type {Store} from '../objects/Store.js';
import type {IndexOp} from '../index/Index.js';
import {blobLayerKey, blobReposKey, imageSourceKey, layerBlobKey} from '../index/keys.js';
import {decodeRecord, decodeText, encodeRecord, encodeText} from '../index/values.js';
import type {Compression} from '../oci/compress.js';

// The index records that keep registry digests stable (docs/format.md, "The index"; keys in index/keys.ts).
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

type Put = Extract<IndexOp, {type: 'put'}>;

/** Locations kept per blob, newest first: enough mount candidates (docker tries at most 4). */
const LOCATIONS_MAX = 8;

export async function getLayerBlob(store: Store, layer: Digest, compression: Compression): Promise<LayerBlobRecord | undefined> {
  const v = await store.index.get(layerBlobKey(layer, compression));
  return v && decodeRecord<LayerBlobRecord>(v);
}

export function layerBlobOp(layer: Digest, compression: Compression, record: LayerBlobRecord): Put {
  return {type: 'put', key: layerBlobKey(layer, compression), value: encodeRecord(record)};
}

/** `rb:<sha256>` -> layer: a compressed digest or DiffID the store knows a layer by. */
export function blobLayerOp(sha256: string, layer: Digest): Put {
  return {type: 'put', key: blobLayerKey(sha256), value: encodeText(layer)};
}

/** The layer a compressed digest or DiffID names, when the store still has that layer. */
export async function layerOfBlob(store: Store, sha256: string): Promise<Digest | undefined> {
  const v = await store.index.get(blobLayerKey(sha256));
  const layer = v && decodeText<Digest>(v);
  return layer && (await store.getLayer(layer)) ? layer : undefined;
}

/** `rs:<sha256>`: the repositories a blob was seen in, newest first. */
export async function blobLocations(store: Store, sha256: string): Promise<BlobLocation[]> {
  const v = await store.index.get(blobReposKey(sha256));
  return v ? decodeRecord<BlobLocation[]>(v) : [];
}

/** The record that puts `seen` first among a blob's locations (`known` are the current ones). */
export function blobLocationsOp(sha256: string, known: readonly BlobLocation[], seen: BlobLocation): Put {
  const rest = known.filter(l => l.registry !== seen.registry || l.repo !== seen.repo);
  return {type: 'put', key: blobReposKey(sha256), value: encodeRecord([seen, ...rest].slice(0, LOCATIONS_MAX))};
}

/** `src:<image>`: where a pulled image came from. */
export async function getImageSource(store: Store, image: Digest): Promise<ImageSource | undefined> {
  const v = await store.index.get(imageSourceKey(image));
  return v && decodeRecord<ImageSource>(v);
}

export function imageSourceOp(image: Digest, source: ImageSource): Put {
  return {type: 'put', key: imageSourceKey(image), value: encodeRecord(source)};
}

/** The blobs a source record keeps (the original manifest, config and index bytes): gc's edges. */
export function sourceBlobs(source: ImageSource): Digest[] {
  return [source.manifest.blob, source.config.blob, ...(source.index ? [source.index.blob] : [])];
}
