import type {Digest} from '../objects/digest.js';
import type {TagRef} from '../objects/refs.js';

/**
 * Every LevelDB key of the store is built here (docs/format.md, "The index (LevelDB)").
 * Keys are `<prefix><id>`; no prefix is a prefix of another, so a key names its family.
 * A key is also the name of a node of the object graph (maintenance/graph.ts) and of a
 * problem `verify` reports, so those speak of keys too and read them back with `parseKey`.
 */
export const PREFIX = {
  blob: 'b:', tree: 't:', layer: 'l:', image: 'i:', tag: 'tag:', container: 'c:', containerName: 'cn:', flat: 'f:', pin: 'pin:', lease: 'lease:',
  // Registry metadata (registry/records.ts): metadata about a layer, blob or image, never a root.
  layerBlob: 'rd:', blobLayer: 'rb:', blobRepos: 'rs:', imageSource: 'src:',
} as const;

/** A family of keys: what the object or ref under it is. */
export type KeyKind = keyof typeof PREFIX;

/** What a pin keeps: an image or a layer. */
export type PinKind = 'image' | 'layer';

/** `b:<digest>`: a blob, inline bytes or the size of its object file (values.ts, blob). */
export const blobKey = (d: Digest): string => PREFIX.blob + d;
/** `t:<digest>`: a tree's canonical encoding. */
export const treeKey = (d: Digest): string => PREFIX.tree + d;
/** `l:<digest>`: a layer record (JSON); the digest is its root tree's. */
export const layerKey = (d: Digest): string => PREFIX.layer + d;
/** `i:<digest>`: an image's canonical encoding. */
export const imageKey = (d: Digest): string => PREFIX.image + d;
/** `tag:<name>:<tag>`: the digest of the image a tag names. */
export const tagKey = (tag: TagRef): string => PREFIX.tag + tag;
/** `c:<id>`: a container record (JSON). */
export const containerKey = (id: string): string => PREFIX.container + id;
/** `cn:<name>`: the id of the container with that name. */
export const containerNameKey = (name: string): string => PREFIX.containerName + name;
/** `f:<chain id>`: the merged tree memoised for a layer stack. */
export const flatKey = (chain: Digest): string => PREFIX.flat + chain;
/** `pin:i:<digest>` or `pin:l:<digest>`: a pin (JSON `{created}`); after `pin:` stands the key it keeps. */
export const pinKey = (kind: PinKind, id: Digest): string => PREFIX.pin + (kind === 'image' ? imageKey(id) : layerKey(id));
/** `lease:<id>`: a lease record (JSON), a root held by work in progress. */
export const leaseKey = (id: string): string => PREFIX.lease + id;

/** `rd:<layer>:<compression>`: how strata's own export of a layer compresses (JSON `{digest, size, mediaType, diffId}`). */
export const layerBlobKey = (layer: Digest, compression: string): string => `${PREFIX.layerBlob}${layer}:${compression}`;
/** `rb:sha256:<hex>`: the layer a compressed layer digest or DiffID names. */
export const blobLayerKey = (sha256: string): string => PREFIX.blobLayer + sha256;
/** `rs:sha256:<hex>`: the registry repositories a blob was seen in (JSON, newest first). */
export const blobReposKey = (sha256: string): string => PREFIX.blobRepos + sha256;
/** `src:<digest>`: where a pulled image came from, with its original manifest, config and index blobs (JSON). */
export const imageSourceKey = (image: Digest): string => PREFIX.imageSource + image;
/** The layer a `rd:` key is about. */
export const layerOfLayerBlobKey = (key: string): Digest => key.slice(PREFIX.layerBlob.length, key.lastIndexOf(':')) as Digest;
const KINDS = Object.keys(PREFIX) as KeyKind[];

/** A key's family and what follows its prefix; undefined for a key of no family. */
export function parseKey(key: string): {kind: KeyKind; id: string} | undefined {
  for (const kind of KINDS)
    if (key.startsWith(PREFIX[kind])) return {kind, id: key.slice(PREFIX[kind].length)};
  return undefined;
}

/** The digest in a key of a family named by digest (blob, tree, layer, image, flat); undefined for any other key. */
export function digestOf(key: string, kind: 'blob' | 'tree' | 'layer' | 'image' | 'flat'): Digest | undefined {
  return key.startsWith(PREFIX[kind]) ? key.slice(PREFIX[kind].length) as Digest : undefined;
}

/** The key a pin keeps alive: `pin:i:<d>` -> `i:<d>`. */
export const pinnedKey = (pin: string): string => pin.slice(PREFIX.pin.length);

/** What a pin key keeps: `pin:i:<d>` -> image d. */
export function pinTarget(key: string): {kind: PinKind; id: Digest} {
  const target = pinnedKey(key);
  const image = digestOf(target, 'image');
  return image ? {kind: 'image', id: image} : {kind: 'layer', id: digestOf(target, 'layer')!};
}
