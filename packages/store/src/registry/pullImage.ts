import type {Readable} from 'node:stream';
import {type Manifest, type RegistryClient, isIndexType} from '@strata/registry';
import type {Digest} from '../objects/digest.js';
import {StoreError} from '../errors.js';
import {layerKey} from '../index/keys.js';
import type {TagRef} from '../objects/refs.js';
import type {Store} from '../objects/Store.js';
import {type ImportedImage, type ImportedLayer, commitImages, expectDigest, importLayerBlob} from '../oci/importImage.js';
import {type Descriptor, LAYER_MEDIA_TYPES, MEDIA, checkDescriptor, fromOciConfig, hostPlatform, parseJson} from '../oci/ociConfig.js';
import {JSON_MAX} from '../oci/ociLayout.js';
import {type BlobLocation, blobLayerOp, blobLocations, blobLocationsOp, imageSourceOp, layerOfBlob} from './records.js';
import {runParallel} from './runParallel.js';

/** Blobs fetched at once: docker, containerd and oras-go all use 3. */
export const PULL_CONCURRENCY = 3;

/** Progress of a pull: bytes fetched so far of the bytes the missing layers declare. */
export interface PullProgress {
  readonly bytes: number;
  readonly total: number;
  readonly layers: number;
  readonly fetching: number;
}

export interface PullOptions {
  /** The repository inside the registry (`library/alpine`) and the tag or digest to pull. */
  readonly repo: string;
  readonly ref: string;
  /** Tags to give the image (none: the image is stored untagged). */
  readonly tags: readonly TagRef[];
  /** `os/arch[/variant]` to choose from an index; the host's when not given. */
  readonly platform?: string;
  readonly concurrency?: number;
  readonly onProgress?: (p: PullProgress) => void;
}

export interface PulledImage extends ImportedImage {
  readonly manifest: string;
  /** Per layer: its compressed digest and whether its bytes were fetched (false: the store had the layer). */
  readonly blobs: readonly {readonly digest: string; readonly size: number; readonly fetched: boolean}[];
  readonly fetchedBytes: number;
}

/**
 * Pulls one image from a registry into the store: the manifest (an index or manifest list
 * is resolved to the platform asked for, else the host's), the config, and each layer the
 * store does not already have by its compressed digest or DiffID, several at a time, each
 * checked while it streams and against the config's DiffID. Nothing becomes visible until
 * every layer is in: the layer records, the image, its tags, the source record (the
 * original manifest, config and index bytes, kept as blobs) and the blob mappings are one
 * atomic batch. A failed pull leaves at most unreferenced trees and blobs for gc.
 * Throws the client's codes, BAD_MANIFEST, DIGEST_MISMATCH, and the tar importer's codes.
 */
export async function pullImage(store: Store, client: RegistryClient, options: PullOptions): Promise<PulledImage> {
  const {repo} = options;
  const where = `${client.domain}/${repo}`;
  const top = await client.getManifest(repo, options.ref);
  let manifest = top;
  let index: Manifest | undefined;
  if (isIndexType(top.mediaType) || Array.isArray(parseJson(top.bytes, `${where} ${options.ref}`).manifests)) {
    index = top;
    const chosen = choosePlatform(parseJson(top.bytes, `index ${top.digest}`), options.platform, `${where}:${options.ref}`);
    manifest = await client.getManifest(repo, chosen.digest);
    if (manifest.digest !== chosen.digest) throw new StoreError('DIGEST_MISMATCH', `${where}@${chosen.digest} arrived as ${manifest.digest}`);
  }
  const m = parseJson(manifest.bytes, `manifest ${manifest.digest}`);
  const configDesc = checkDescriptor(m.config, `the config of manifest ${manifest.digest}`);
  if (!Array.isArray(m.layers)) throw new StoreError('BAD_MANIFEST', `manifest ${manifest.digest} of ${where} has no layers list`);
  const layerDescs = m.layers.map((l, j) => checkDescriptor(l, `layer ${j} of manifest ${manifest.digest}`));
  for (const d of layerDescs)
    if (!LAYER_MEDIA_TYPES.has(d.mediaType)) throw new StoreError('BAD_MANIFEST', `layer ${d.digest} of ${where} has media type ${d.mediaType}, which strata does not import`);
  if (configDesc.size > JSON_MAX) throw new StoreError('BAD_MANIFEST', `the config of ${where} declares ${configDesc.size} bytes, more than a config may be`);
  const configBytes = await readAll(client.fetchBlob(repo, configDesc.digest, {size: configDesc.size}));
  const {config, diffIds, platform} = fromOciConfig(configBytes, `config ${configDesc.digest}`);
  if (diffIds.length !== layerDescs.length)
    throw new StoreError('BAD_MANIFEST', `manifest ${manifest.digest} has ${layerDescs.length} layers but its config lists ${diffIds.length} DiffIDs`);

  // Layers the store has (by compressed digest or DiffID) are not fetched. Each is kept from
  // a gc in another process until the image is committed (this process's lease), or, when a
  // gc took it after the record was read, fetched after all.
  const known = await Promise.all(layerDescs.map(async (d, j) => (await layerOfBlob(store, d.digest)) ?? (await layerOfBlob(store, diffIds[j]!))));
  for (const [j, id] of known.entries()) {
    if (!id) continue;
    try {
      await store.protect([layerKey(id)]);
    } catch (err) {
      if (!(err instanceof StoreError && err.code === 'OBJECT_MISSING')) throw err;
      known[j] = undefined;
    }
  }
  const missing = layerDescs.map((d, j) => ({d, j})).filter(({j}) => !known[j]);
  const unique = [...new Map(missing.map(x => [x.d.digest, x])).values()];
  const total = unique.reduce((n, x) => n + x.d.size, 0);
  const received = new Map<string, number>();
  const report = () => options.onProgress?.({bytes: [...received.values()].reduce((a, b) => a + b, 0), total, layers: layerDescs.length, fetching: unique.length});
  const fetched = new Map<string, ImportedLayer>();
  await runParallel(unique, options.concurrency ?? PULL_CONCURRENCY, async ({d, j}) => {
    const stream = client.fetchBlob(repo, d.digest, {size: d.size, onBytes: n => { received.set(d.digest, n); report(); }});
    // When the registry's stream fails (a cut that cannot be resumed, wrong bytes), the
    // importer sees a truncated archive; the registry's error is the one that says why.
    let fetchError: unknown;
    stream.once('error', err => { fetchError = err; });
    const layer = await importLayerBlob(store, stream, `${where}@${d.digest}`).catch(err => { throw fetchError ?? err; });
    // The client checked the bytes against the digest; the importer hashed what it read too.
    expectDigest(`layer ${d.digest} of ${where}`, d.digest, layer.digest);
    expectDigest(`layer ${d.digest} of ${where} (uncompressed)`, diffIds[j]!, layer.diffId);
    fetched.set(d.digest, layer);
  });

  const layers: ImportedLayer[] = [];
  for (const [j, d] of layerDescs.entries()) {
    const got = fetched.get(d.digest);
    if (got) {
      expectDigest(`layer ${d.digest} of ${where} (uncompressed)`, diffIds[j]!, got.diffId);
      layers.push(got);
    } else {
      const record = (await store.getLayer(known[j]!))!;
      layers.push({record, digest: d.digest, size: d.size, diffId: diffIds[j]!, newBytes: 0});
    }
  }

  // The original bytes, kept so an unchanged image pushes back byte-identical.
  const manifestBlob = await store.putBlob(manifest.bytes);
  const configBlob = await store.putBlob(configBytes);
  const indexBlob = index && (await store.putBlob(index.bytes));
  const here: BlobLocation = {registry: client.domain, repo};
  const extra = new Map<string, {type: 'put'; key: string; value: Buffer}>();
  const put = (op: {type: 'put'; key: string; value: Buffer}) => extra.set(op.key, op);
  for (const [j, d] of layerDescs.entries()) {
    put(blobLayerOp(d.digest, layers[j]!.record.id));
    put(blobLayerOp(diffIds[j]!, layers[j]!.record.id));
  }
  for (const d of [configDesc, ...layerDescs]) put(blobLocationsOp(d.digest, await blobLocations(store, d.digest), here));
  const tagRef = options.ref.includes(':') ? undefined : options.ref;
  const [image] = await commitImages(store, [{
    layers, config, ...(platform ? {platform} : {}), tags: options.tags,
    records: (id: Digest) => [imageSourceOp(id, {
      registry: client.domain, repo, ...(tagRef ? {tag: tagRef} : {}),
      manifest: {digest: manifest.digest, mediaType: manifest.mediaType || MEDIA.manifest, blob: manifestBlob},
      config: {digest: configDesc.digest, blob: configBlob},
      ...(index && indexBlob ? {index: {digest: index.digest, mediaType: index.mediaType, blob: indexBlob}} : {}),
    })],
  }], [...extra.values()]);
  return {
    ...image!, manifest: manifest.digest,
    blobs: layerDescs.map(d => ({digest: d.digest, size: d.size, fetched: fetched.has(d.digest)})),
    fetchedBytes: [...fetched.keys()].reduce((n, k) => n + (layerDescs.find(d => d.digest === k)?.size ?? 0), 0),
  };
}

/**
 * The manifest of an index for `platform` (`os/arch[/variant]`), else for the host's
 * platform; entries that name no platform match any. Throws BAD_MANIFEST naming the
 * platforms the index has.
 */
function choosePlatform(index: Record<string, unknown>, platform: string | undefined, where: string): Descriptor {
  if (!Array.isArray(index.manifests)) throw new StoreError('BAD_MANIFEST', `the index of ${where} has no manifests list`);
  const descs = index.manifests.map((d, i) => checkDescriptor(d, `manifest ${i} of the index of ${where}`));
  const host = hostPlatform();
  const [os, architecture, variant] = platform ? platform.split('/') : [host.os, host.architecture, undefined];
  const images = descs.filter(d => d.mediaType === MEDIA.manifest || d.mediaType === MEDIA.dockerManifest);
  const match = images.find(d => !d.platform || (d.platform.os === os && d.platform.architecture === architecture && (variant === undefined || (d.platform as {variant?: string}).variant === variant)));
  if (!match) {
    const has = images.map(d => [d.platform?.os, d.platform?.architecture, (d.platform as {variant?: string} | undefined)?.variant].filter(Boolean).join('/')).join(', ');
    throw new StoreError('BAD_MANIFEST', `${where} has no image for ${[os, architecture, variant].filter(Boolean).join('/')} (it has ${has || 'none'}); choose one with --platform`);
  }
  return match;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
