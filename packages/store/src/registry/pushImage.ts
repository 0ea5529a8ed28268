import {createHash} from 'node:crypto';
import {Readable} from 'node:stream';
import {RegistryError, type RegistryClient} from '@strata/registry';
import type {Digest} from '../objects/digest.js';
import type {Image} from '../objects/image.js';
import type {Store} from '../objects/Store.js';
import type {IndexOp} from '../index/Index.js';
import {PREFIX, imageKey} from '../index/keys.js';
import {decodeRecord} from '../index/values.js';
import type {Compression} from '../oci/compress.js';
import {compressedLayerStream} from '../oci/exportLayer.js';
import {type Descriptor, MEDIA, checkDescriptor, parseJson, toOciConfig} from '../oci/ociConfig.js';
import {ociManifest} from '../oci/ociLayout.js';
import {type BlobLocation, type ImageSource, type LayerBlobRecord, blobLayerOp, blobLocations, blobLocationsOp, getImageSource, getLayerBlob, layerBlobOp} from './records.js';
import {runParallel} from './runParallel.js';

/** Blobs pushed at once (oras-go and containerd use 3, docker 5). */
export const PUSH_CONCURRENCY = 3;
/** Repositories a missing blob is tried to be mounted from (docker tries up to 4 for big layers). */
const MOUNT_TRIES = 3;

/** What became of one blob of a push. */
export type BlobAction = 'present' | 'mounted' | 'uploaded';

export interface PushProgress {
  /** Bytes uploaded so far, and the layers settled (present, mounted or uploaded) of all. */
  readonly bytes: number;
  readonly done: number;
  readonly layers: number;
}

export interface PushOptions {
  readonly repo: string;
  /** The tag to put the manifest under. */
  readonly tag: string;
  readonly compression?: Exclude<Compression, 'none'>;
  readonly concurrency?: number;
  readonly onProgress?: (p: PushProgress) => void;
}

export interface PushedImage {
  /** The manifest's digest, as the registry names it. */
  readonly manifest: string;
  readonly mediaType: string;
  readonly size: number;
  /** True when the original manifest of a pulled image was pushed back, byte for byte. */
  readonly original: boolean;
  readonly blobs: readonly {readonly digest: string; readonly size: number; readonly action: BlobAction}[];
  readonly uploadedBytes: number;
}

type Put = Extract<IndexOp, {type: 'put'}>;

/**
 * Pushes an image to a registry repository, blobs first and the manifest last. A pulled
 * image that is unchanged goes back as its original manifest and config bytes (so its
 * digest is the one it was pulled by) when the registry has, or can mount, its layers.
 * Otherwise strata's own export: each layer whose compressed digest an earlier push or
 * export recorded is only checked (HEAD) and, when missing, mounted from a repository of
 * the same registry known to hold it, else streamed up (export, compress, upload in one
 * pass; no temporary file). So a re-push compresses nothing and uploads nothing. The
 * digests learnt and where each blob now is are recorded afterwards. Throws the client's
 * codes, OBJECT_MISSING.
 */
export async function pushImage(store: Store, client: RegistryClient, image: {id: Digest; image: Image}, options: PushOptions): Promise<PushedImage> {
  // The image stays readable to the end even if another process untags it and collects garbage.
  await store.protect([imageKey(image.id)]);
  const ops = new Map<string, Put>();
  const put = (op: Put) => ops.set(op.key, op);
  const here: BlobLocation = {registry: client.domain, repo: options.repo};
  const seenAt = async (digest: string) => put(blobLocationsOp(digest, await blobLocations(store, digest), here));

  /** Makes the repository hold a blob: HEAD, else a mount from a known repository, else `upload` (when given). */
  const ensure = async (digest: string, upload?: () => Promise<void>): Promise<BlobAction | undefined> => {
    if ((await client.blobSize(options.repo, digest)) !== undefined) return 'present';
    const from = (await blobLocations(store, digest)).filter(l => l.registry === client.domain && l.repo !== options.repo).slice(0, MOUNT_TRIES);
    for (const l of from) if (await client.mountBlob(options.repo, digest, l.repo)) return 'mounted';
    if (!upload) return undefined;
    await upload();
    return 'uploaded';
  };

  const result = (await pushOriginal(store, client, image.id, options, ensure)) ?? (await pushExport(store, client, image.image, options, ensure, put));
  for (const b of result.blobs) await seenAt(b.digest);
  await store.index.commit([...ops.values()]);
  return result;
}

type Ensure = (digest: string, upload?: () => Promise<void>) => Promise<BlobAction | undefined>;

/** The original bytes of a pulled image, when every layer blob is (or can be mounted) there; undefined otherwise. */
async function pushOriginal(store: Store, client: RegistryClient, id: Digest, options: PushOptions, ensure: Ensure): Promise<PushedImage | undefined> {
  const source = await getImageSource(store, id);
  if (!source) return undefined;
  const manifestBytes = await store.readBlob(source.manifest.blob);
  const m = parseJson(manifestBytes, `manifest ${source.manifest.digest}`);
  const layers = (m.layers as unknown[]).map((l, j) => checkDescriptor(l, `layer ${j} of manifest ${source.manifest.digest}`));
  const config = checkDescriptor(m.config, `the config of manifest ${source.manifest.digest}`);
  const blobs: PushedImage['blobs'][number][] = [];
  for (const l of layers) {
    // strata keeps the layers, not their original compressed bytes: a blob the registry
    // lacks and cannot mount means pushing strata's own export instead.
    const action = await ensure(l.digest);
    if (!action) return undefined;
    blobs.push({digest: l.digest, size: l.size, action});
  }
  const configBytes = await store.readBlob(source.config.blob);
  const action = (await ensure(config.digest, async () => { await client.pushBlob(options.repo, () => Readable.from([configBytes]), {digest: config.digest}); }))!;
  blobs.unshift({digest: config.digest, size: config.size, action});
  const manifest = await client.putManifest(options.repo, options.tag, manifestBytes, source.manifest.mediaType);
  return {manifest, mediaType: source.manifest.mediaType, size: manifestBytes.length, original: true, blobs, uploadedBytes: action === 'uploaded' ? configBytes.length : 0};
}

/**
 * strata's own export of the image: recorded layer blobs checked or mounted, the others
 * streamed up. An image made on a pulled one (a commit on top) keeps the pulled image's
 * original layer blobs, config and manifest type, and extends its config (DiffIDs,
 * history, the run config) rather than regenerating it, when the registry has or can
 * mount those blobs.
 */
async function pushExport(store: Store, client: RegistryClient, image: Image, options: PushOptions, ensure: Ensure, put: (op: Put) => void): Promise<PushedImage> {
  const compression = options.compression ?? 'gzip';
  const base = await pulledBase(store, image, compression, ensure);
  const from = base?.layers.length ?? 0;
  const records: LayerBlobRecord[] = new Array(image.layers.length);
  const actions: BlobAction[] = new Array(image.layers.length);
  for (const [j, d] of (base?.layers ?? []).entries()) {
    records[j] = {digest: d.digest, size: d.size, mediaType: d.mediaType, diffId: base!.diffIds[j]!};
    actions[j] = base!.actions[j]!;
  }
  const sent = new Map<number, number>();
  let done = from;
  const report = () => options.onProgress?.({bytes: [...sent.values()].reduce((a, b) => a + b, 0), done, layers: image.layers.length});
  const unique = [...new Set(image.layers.slice(from))];
  await runParallel(unique, options.concurrency ?? PUSH_CONCURRENCY, async layer => {
    const j = image.layers.indexOf(layer, from);
    let record = await getLayerBlob(store, layer, compression);
    const upload = async (expect: string | undefined) => {
      let current: ReturnType<typeof compressedLayerStream> | undefined;
      const {digest, size} = await client.pushBlob(options.repo, () => (current = compressedLayerStream(store, layer, compression)).stream, {
        ...(expect ? {digest: expect} : {}), onBytes: n => { sent.set(j, n); report(); },
      });
      record = {digest, size, mediaType: MEDIA.layer[compression], diffId: current!.diffId()};
    };
    let action: BlobAction | undefined;
    if (record) {
      try {
        action = await ensure(record.digest, () => upload(record!.digest));
      } catch (err) {
        // A record from an older strata whose export differs: upload afresh and record anew.
        if (!(err instanceof RegistryError && err.code === 'DIGEST_MISMATCH')) throw err;
        await upload(undefined);
        action = 'uploaded';
      }
    } else {
      await upload(undefined);
      action = 'uploaded';
    }
    put(layerBlobOp(layer, compression, record!));
    put(blobLayerOp(record!.digest, layer));
    put(blobLayerOp(record!.diffId, layer));
    for (const [i, l] of image.layers.entries()) if (l === layer && i >= from) { records[i] = record!; actions[i] = action!; }
    done++;
    report();
  });
  const configBytes = base ? extendConfig(base, image, records.map(r => r.diffId)) : toOciConfig(image.config, records.map(r => r.diffId), image.platform);
  const config: Descriptor = {mediaType: base?.configMediaType ?? MEDIA.config, digest: sha256(configBytes), size: configBytes.length};
  const configAction = (await ensure(config.digest, async () => { await client.pushBlob(options.repo, () => Readable.from([configBytes]), {digest: config.digest}); }))!;
  const layerDescs = records.map((r, j) => ({mediaType: j < from ? r.mediaType : base?.newLayerMediaType ?? r.mediaType, digest: r.digest, size: r.size}));
  const mediaType = base?.manifestMediaType ?? MEDIA.manifest;
  const manifestBytes = mediaType === MEDIA.manifest ? ociManifest(config, layerDescs) : Buffer.from(JSON.stringify({schemaVersion: 2, mediaType, config, layers: layerDescs}));
  const manifest = await client.putManifest(options.repo, options.tag, manifestBytes, mediaType);
  const blobs = [{digest: config.digest, size: config.size, action: configAction}, ...records.map((r, i) => ({digest: r.digest, size: r.size, action: actions[i]!}))];
  const uploadedBytes = blobs.filter(b => b.action === 'uploaded').reduce((n, b) => n + b.size, 0);
  return {manifest, mediaType, size: manifestBytes.length, original: false, blobs, uploadedBytes};
}

/** A pulled image an image was made on: its original layer blobs (here, at the target) and config. */
interface PulledBase {
  readonly image: Image;
  readonly layers: readonly Descriptor[];
  readonly actions: readonly BlobAction[];
  readonly diffIds: readonly string[];
  readonly config: Record<string, unknown>;
  readonly configMediaType: string;
  readonly manifestMediaType: string;
  /** The media type new layers get in a manifest of that type. */
  readonly newLayerMediaType: string;
}

/**
 * The pulled image with the longest layer list that is a strict prefix of `image`'s, when
 * the target repository has (or can mount) every one of its original layer blobs and its
 * manifest type can carry layers of `compression`. Undefined otherwise.
 */
async function pulledBase(store: Store, image: Image, compression: Exclude<Compression, 'none'>, ensure: Ensure): Promise<PulledBase | undefined> {
  let best: {image: Image; source: ImageSource} | undefined;
  for (const [key, value] of await store.index.scan(PREFIX.imageSource)) {
    const candidate = await store.getImage(key.slice(PREFIX.imageSource.length) as Digest);
    if (!candidate || candidate.layers.length >= image.layers.length || candidate.layers.length <= (best?.image.layers.length ?? 0)) continue;
    if (candidate.layers.every((l, i) => image.layers[i] === l)) best = {image: candidate, source: decodeRecord<ImageSource>(value)};
  }
  if (!best) return undefined;
  const {source} = best;
  const docker = source.manifest.mediaType === MEDIA.dockerManifest;
  if (docker && compression !== 'gzip') return undefined; // docker's schema 2 has no zstd layer type
  const manifest = parseJson(await store.readBlob(source.manifest.blob), `manifest ${source.manifest.digest}`);
  const layers = (manifest.layers as unknown[]).map((l, j) => checkDescriptor(l, `layer ${j} of manifest ${source.manifest.digest}`));
  const config = parseJson(await store.readBlob(source.config.blob), `config ${source.config.digest}`);
  const diffIds = (config.rootfs as {diff_ids?: string[]} | undefined)?.diff_ids ?? [];
  if (diffIds.length !== layers.length) return undefined;
  const actions: BlobAction[] = [];
  for (const l of layers) {
    const action = await ensure(l.digest);
    if (!action) return undefined;
    actions.push(action);
  }
  return {
    image: best.image, layers, actions, diffIds, config,
    configMediaType: checkDescriptor(manifest.config, `the config of manifest ${source.manifest.digest}`).mediaType,
    manifestMediaType: source.manifest.mediaType,
    newLayerMediaType: docker ? DOCKER_GZIP_LAYER : MEDIA.layer[compression],
  };
}

const DOCKER_GZIP_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

/**
 * The pulled config, extended for the layers on top: their DiffIDs appended, the history
 * strata added since the base appended, and the run config as the image now has it (env,
 * cmd…: the fields strata keeps; the others stay as they were). Key order is the original's.
 */
function extendConfig(base: PulledBase, image: Image, diffIds: readonly string[]): Buffer {
  const out: Record<string, unknown> = {...base.config};
  out.rootfs = {...(base.config.rootfs as object), type: 'layers', diff_ids: diffIds};
  const added = (image.config.history ?? []).slice(base.image.config.history?.length ?? 0).map(h => ({
    ...(h.created !== undefined ? {created: h.created} : {}),
    ...(h.createdBy !== undefined ? {created_by: h.createdBy} : {}),
    ...(h.comment !== undefined ? {comment: h.comment} : {}),
    ...(h.emptyLayer ? {empty_layer: true} : {}),
  }));
  if (added.length) out.history = [...(Array.isArray(base.config.history) ? base.config.history : []), ...added];
  const run: Record<string, unknown> = {...(base.config.config as Record<string, unknown> | undefined)};
  const c = image.config;
  const set = (key: string, value: unknown) => { if (value === undefined) delete run[key]; else run[key] = value; };
  set('Env', c.env);
  set('Cmd', c.cmd);
  set('Entrypoint', c.entrypoint);
  set('WorkingDir', c.workingDir);
  set('User', c.user);
  set('Labels', c.labels);
  out.config = run;
  return Buffer.from(JSON.stringify(out), 'utf8');
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}
