import {type Readable, Transform} from 'node:stream';
import {finished} from 'node:stream/promises';
import type {Digest} from '../objects/digest.js';
import {StoreError} from '../errors.js';
import {sha256Tap} from './Sha256Tap.js';
import {type ImageConfig, type Platform, hashImage} from '../objects/image.js';
import {decompress, sniffStream} from './decompress.js';
import {importTarStream} from '../import/importTar.js';
import {type TagRef, parseTag} from '../objects/refs.js';
import type {LayerRecord, Store} from '../objects/Store.js';
import type {IndexOp} from '../index/Index.js';
import {imageKey, layerKey, tagKey} from '../index/keys.js';
import {encodeRecord, encodeText} from '../index/values.js';

/**
 * Progress of an image import or export: image i of n, layer j of m (of that image), and
 * bytes: of an import, the layer blob bytes read so far out of `totalBytes` (every distinct
 * layer blob of the source, known before the first is read); of an export, the blob bytes
 * written so far (no total: compression decides it).
 */
export interface ImageProgress {
  readonly image: number;
  readonly images: number;
  readonly layer: number;
  readonly layers: number;
  readonly bytes: number;
  readonly totalBytes?: number;
}

export interface ImageImportOptions {
  /** Name the image so, instead of the name the layout or archive gives (one image only). */
  readonly tag?: string;
  /** Import only the image of a layout whose `org.opencontainers.image.ref.name` is this (skopeo's `oci:DIR:REF`, `docker-archive:FILE:NAME:TAG`). */
  readonly ref?: string;
  /**
   * The name a bare OCI ref name (`latest`) is given: by default the layout directory's
   * name; null when there is none (a stream), so such an image needs `tag`.
   */
  readonly layoutName?: string | null;
  readonly onProgress?: (p: ImageProgress) => void;
  /**
   * The most bytes a layer may expand to (its uncompressed tar). A layer that grows past it
   * fails the import (LAYER_TOO_LARGE) as it streams, and the import removes what it wrote.
   */
  readonly maxLayerBytes?: number;
}

/** One image an import stored. */
export interface ImportedImage {
  readonly id: Digest;
  readonly tags: TagRef[];
  readonly layers: readonly {readonly id: Digest; readonly diffId: string; readonly newBytes: number}[];
  /**
   * Blob bytes this image's layers added to the store (0 when all were there). A layer
   * several images of one import share counts in the first of them only, so the images'
   * newBytes add up to what the import stored.
   */
  readonly newBytes: number;
}

/** A layer blob imported but not yet recorded, with what its bytes hashed to. */
export interface ImportedLayer {
  readonly record: LayerRecord;
  /** sha256 of the bytes as read (compressed, if they were), and their count. */
  readonly digest: string;
  readonly size: number;
  /** sha256 of the uncompressed tar. */
  readonly diffId: string;
  readonly newBytes: number;
}

/**
 * Imports one layer blob (plain, gzip or zstd tar, sniffed) in one pass, hashing the
 * bytes read and the tar under them. The layer record is not written: `commitImages`
 * writes it with its image, after every digest was checked. Throws the tar importer's
 * codes (UNSAFE_PATH, BAD_ARCHIVE…).
 */
export async function importLayerBlob(store: Store, input: Readable, source: string, onBytes?: (n: number) => void, maxBytes?: number): Promise<ImportedLayer> {
  const raw = sha256Tap();
  input.on('error', err => raw.destroy(err));
  if (onBytes) raw.on('data', () => onBytes(raw.size));
  const [compression, stream] = await sniffStream(input.pipe(raw));
  const plain = sha256Tap();
  const tarBytes = decompress(stream, compression);
  tarBytes.on('error', err => plain.destroy(err));
  if (maxBytes === undefined) tarBytes.pipe(plain);
  else {
    const limit = atMost(maxBytes, source);
    limit.on('error', err => plain.destroy(err));
    tarBytes.pipe(limit).pipe(plain);
  }
  let result;
  try {
    result = await importTarStream(store, plain, {source, deferRecord: true});
    // The tar may end before its stream does (padding after the end blocks): hash it all.
    plain.resume();
    await finished(plain);
  } catch (err) {
    input.destroy(); // let go of the file (or archive member) at once
    throw err;
  }
  return {record: result.layer, digest: raw.digest(), size: raw.size, diffId: plain.digest(), newBytes: result.newBytes};
}

/** Passes at most `max` bytes, then fails with LAYER_TOO_LARGE: a compressed bomb stops as it expands. */
function atMost(max: number, source: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > max) return done(new StoreError('LAYER_TOO_LARGE', `layer ${source} expands to more than ${max} bytes, the limit set for this import`));
      done(null, chunk);
    },
  });
}

/** Throws DIGEST_MISMATCH unless `got` equals `want`. */
export function expectDigest(what: string, want: string, got: string): void {
  if (want !== got) throw new StoreError('DIGEST_MISMATCH', `${what} should have digest ${want} but its bytes hash to ${got}`);
}

/** An image ready to commit: its layers (bottom first), config and tags. */
export interface PendingImage {
  readonly layers: readonly ImportedLayer[];
  readonly config: ImageConfig;
  readonly platform?: Platform;
  readonly tags: readonly TagRef[];
  /** Further records that name the image, written in the same batch (a pull's source record). */
  readonly records?: (image: Digest) => {type: 'put'; key: string; value: Buffer}[];
}

/**
 * Writes the layer records, images and tags of an import in one atomic, durable batch,
 * with `extra` records: either all of them become visible or none does.
 */
export async function commitImages(store: Store, pending: readonly PendingImage[], extra: readonly IndexOp[] = []): Promise<ImportedImage[]> {
  const ops: IndexOp[] = [...extra];
  const seen = new Set<string>();
  const out: ImportedImage[] = [];
  for (const p of pending) {
    // A layer's new bytes count once, in the first image that brings it (a shared base is stored once).
    const layers = [];
    for (const l of p.layers) {
      const first = !seen.has(l.record.id);
      if (first) {
        seen.add(l.record.id);
        if (!(await store.getLayer(l.record.id))) ops.push({type: 'put', key: layerKey(l.record.id), value: encodeRecord(l.record)});
      }
      layers.push({id: l.record.id, diffId: l.diffId, newBytes: first ? l.newBytes : 0});
    }
    const {digest, bytes} = hashImage({layers: p.layers.map(l => l.record.id), config: p.config, ...(p.platform ? {platform: p.platform} : {})});
    ops.push({type: 'put', key: imageKey(digest), value: bytes});
    for (const t of p.tags) ops.push({type: 'put', key: tagKey(t), value: encodeText(digest)});
    if (p.records) ops.push(...p.records(digest));
    out.push({id: digest, tags: [...p.tags], layers, newBytes: layers.reduce((n, l) => n + l.newBytes, 0)});
  }
  await store.index.commit(ops);
  return out;
}

/**
 * The tags of the images of one import: `--tag` for a single image, else the names the
 * source gives (Docker Hub names shortened as docker shows them). Throws BAD_REFERENCE for a name strata cannot use, or `--tag` with several images; BAD_MANIFEST for one name given to two different images (`idOf` tells them apart).
 */
export function tagsFor<T extends {names: readonly string[]}>(images: readonly T[], tag: string | undefined, where: string, idOf: (image: T) => string = () => ''): TagRef[][] {
  if (tag !== undefined) {
    if (images.length !== 1) throw new StoreError('BAD_REFERENCE', `${where} holds ${images.length} images; --tag can name only one`);
    return [[parseTag(tag)]];
  }
  const tags = images.map(i => i.names.map(n => {
    try {
      return parseTag(n); // Docker Hub names in docker's short form: docker.io/library/alpine -> alpine
    } catch (err) {
      throw new StoreError('BAD_REFERENCE', `${where} names an image "${n}", which is not a valid [HOST/]NAME[:TAG]; give one with --tag`, {cause: err});
    }
  }));
  // One name for two different images: the first would end up untagged without a word.
  const owner = new Map<TagRef, string>();
  tags.forEach((ts, i) => {
    const id = idOf(images[i]!) || String(i);
    for (const t of ts) {
      const other = owner.get(t);
      if (other !== undefined && other !== id) throw new StoreError('BAD_MANIFEST', `${where} gives the name ${t} to two different images; remove one from its index (importing both would leave the first untagged)`);
      owner.set(t, id);
    }
  });
  return tags;
}
