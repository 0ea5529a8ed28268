import {createHash, randomBytes} from 'node:crypto';
import {createReadStream} from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {StoreError} from '../errors.js';
import {makeDirs} from '../makeDirs.js';
import {type ImageProgress, type ImageImportOptions, type ImportedImage, type ImportedLayer, type PendingImage, commitImages, expectDigest, importLayerBlob, tagsFor} from './importImage.js';
import {type LayerBlob, writeLayerTar} from './exportLayer.js';
import type {Compression} from './compress.js';
import {type Descriptor, LAYER_MEDIA_TYPES, MEDIA, REF_NAME, checkDescriptor, fromOciConfig, hostPlatform, parseJson, platformFields, toOciConfig} from './ociConfig.js';
import type {TagRef} from '../objects/refs.js';
import type {Store} from '../objects/Store.js';
import type {Image, ImageConfig, Platform} from '../objects/image.js';

/** Manifests, indexes and configs are small; a bigger one is refused rather than read into memory. */
export const JSON_MAX = 16 * 1024 * 1024;

/**
 * Imports every image an OCI image layout's index.json names (image-layout.md): each
 * manifest's layers become strata layers, its config is kept, and it is tagged with its
 * `org.opencontainers.image.ref.name` (a bare tag such as `latest` takes the layout
 * directory's name as its name) or with `tag`. Every blob is checked against its
 * descriptor (size and sha256) and every layer against the config's DiffID before
 * anything is recorded; nested indexes are followed for the host's platform. Nothing
 * becomes visible unless all images import. Throws BAD_MANIFEST, DIGEST_MISMATCH,
 * BAD_REFERENCE, SOURCE_MISSING and the tar importer's codes.
 */
export async function importOciLayout(store: Store, dir: string, options: ImageImportOptions = {}): Promise<ImportedImage[]> {
  // A failed import removes what it wrote (a full disk above all), not only its record.
  return store.undoOnFailure(() => readOciLayout(store, dir, options));
}

async function readOciLayout(store: Store, dir: string, options: ImageImportOptions): Promise<ImportedImage[]> {
  dir = path.resolve(dir);
  const layoutFile = await readSmall(path.join(dir, 'oci-layout'), `${dir}`, 'is not an OCI image layout (it has no oci-layout file)');
  const layout = parseJson(layoutFile, `${dir}/oci-layout`);
  if (typeof layout.imageLayoutVersion !== 'string') throw new StoreError('BAD_MANIFEST', `${dir}/oci-layout names no imageLayoutVersion`);
  const index = parseJson(await readSmall(path.join(dir, 'index.json'), dir, 'has no index.json'), `${dir}/index.json`);
  let found: {manifest: Descriptor; names: string[]; ref?: string}[] = [];
  const layoutName = options.layoutName !== undefined ? options.layoutName : path.basename(dir);
  await collectManifests(dir, index, 'index.json', undefined, found, 0, layoutName);
  if (found.length === 0) throw new StoreError('BAD_MANIFEST', `${dir}/index.json names no image manifest`);
  if (options.ref !== undefined) {
    const all = found;
    found = found.filter(f => f.ref === options.ref);
    if (found.length === 0) throw new StoreError('SOURCE_MISSING', `${dir} has no image named "${options.ref}" (it has ${[...new Set(all.map(f => f.ref).filter(r => r !== undefined))].map(r => `"${r}"`).join(', ') || 'only unnamed images'})`);
  }
  const tags = tagsFor(found, options.tag, dir, f => f.manifest.digest);

  // First every manifest and config (small, checked), so that the total of the layer blobs is known.
  const images: {layerDescs: Descriptor[]; config: ImageConfig; diffIds: string[]; platform: Platform | undefined}[] = [];
  for (const {manifest} of found) {
    const m = parseJson(await readBlob(dir, manifest, 'manifest'), `manifest ${manifest.digest}`);
    const configDesc = checkDescriptor(m.config, `the config of manifest ${manifest.digest}`);
    if (!Array.isArray(m.layers)) throw new StoreError('BAD_MANIFEST', `manifest ${manifest.digest} has no layers list`);
    const layerDescs = m.layers.map((l, j) => checkDescriptor(l, `layer ${j} of manifest ${manifest.digest}`));
    const {config, diffIds, platform} = fromOciConfig(await readBlob(dir, configDesc, 'config'), `config ${configDesc.digest}`);
    if (diffIds.length !== layerDescs.length)
      throw new StoreError('BAD_MANIFEST', `manifest ${manifest.digest} has ${layerDescs.length} layers but its config lists ${diffIds.length} DiffIDs`);
    for (const d of layerDescs)
      if (!LAYER_MEDIA_TYPES.has(d.mediaType)) throw new StoreError('BAD_MANIFEST', `layer ${d.digest} has media type ${d.mediaType}, which strata does not import`);
    images.push({layerDescs, config, diffIds, platform});
  }
  const totalBytes = [...new Map(images.flatMap(i => i.layerDescs.map(d => [d.digest, d.size] as const))).values()].reduce((n, x) => n + x, 0);

  const byBlob = new Map<string, ImportedLayer>();
  const pending: PendingImage[] = [];
  let doneBytes = 0;
  for (const [i, {layerDescs, config, diffIds, platform}] of images.entries()) {
    const layers: ImportedLayer[] = [];
    for (const [j, d] of layerDescs.entries()) {
      let layer = byBlob.get(d.digest);
      const progress = (bytes: number) => options.onProgress?.({image: i + 1, images: images.length, layer: j + 1, layers: layerDescs.length, bytes: doneBytes + bytes, totalBytes} satisfies ImageProgress);
      if (!layer) {
        const file = await blobPath(dir, d, 'layer');
        progress(0);
        // Checked before a byte is expanded: a wrong blob (a 3 MB bomb) is never decompressed.
        const st = await fs.stat(file);
        if (st.size !== d.size) throw new StoreError('DIGEST_MISMATCH', `layer ${d.digest} should be ${d.size} bytes but is ${st.size}`);
        expectDigest(`layer blob ${d.digest}`, d.digest, await sha256File(file));
        try {
          layer = await importLayerBlob(store, createReadStream(file), `${dir} ${d.digest}`, progress, options.maxLayerBytes);
        } catch (err) {
          // A blob that fails to import may simply not be the blob the manifest names: say that.
          const got = await sha256File(file).catch(() => undefined);
          if (got && got !== d.digest) throw new StoreError('DIGEST_MISMATCH', `layer blob ${d.digest} hashes to ${got} (and does not import: ${(err as Error).message})`, {cause: err});
          throw err;
        }
        if (layer.size !== d.size) throw new StoreError('DIGEST_MISMATCH', `layer ${d.digest} should be ${d.size} bytes but is ${layer.size}`);
        expectDigest(`layer blob ${d.digest}`, d.digest, layer.digest);
        byBlob.set(d.digest, layer);
        doneBytes += layer.size;
      }
      progress(0);
      expectDigest(`layer ${d.digest} (uncompressed)`, diffIds[j]!, layer.diffId);
      layers.push(layer);
    }
    pending.push({layers, config, ...(platform ? {platform} : {}), tags: tags[i]!});
  }
  return commitImages(store, pending);
}

/** Gathers image manifests from an index, following nested indexes for the host's platform. */
async function collectManifests(dir: string, index: Record<string, unknown>, what: string, names: string[] | undefined, out: {manifest: Descriptor; names: string[]; ref?: string}[], depth: number, layoutName: string | null, outer?: string): Promise<void> {
  if (depth > 4) throw new StoreError('BAD_MANIFEST', `${dir}: indexes nest too deep`);
  if (!Array.isArray(index.manifests)) throw new StoreError('BAD_MANIFEST', `${what} has no manifests list`);
  const descs = index.manifests.map((d, i) => checkDescriptor(d, `manifest ${i} of ${what}`));
  const host = hostPlatform();
  const nested = depth > 0;
  for (const d of descs) {
    const ref = outer ?? d.annotations?.[REF_NAME];
    const own = names ?? (ref !== undefined ? [refNameToTag(ref, layoutName)] : []);
    if (d.mediaType === MEDIA.index || d.mediaType === MEDIA.dockerManifestList) {
      await collectManifests(dir, parseJson(await readBlob(dir, d, 'index'), `index ${d.digest}`), `index ${d.digest}`, own, out, depth + 1, layoutName, ref);
    } else if (d.mediaType === MEDIA.manifest || d.mediaType === MEDIA.dockerManifest) {
      // In a multi-platform index, take the host's platform (or entries that name none).
      if (nested && d.platform && (d.platform.os !== host.os || d.platform.architecture !== host.architecture)) continue;
      out.push({manifest: d, names: own, ...(ref !== undefined ? {ref} : {})});
    }
  }
}

/**
 * `name:tag` stays; a bare tag (`latest`, as umoci and skopeo write) gets the layout's
 * name (its directory's, or its archive's).
 */
function refNameToTag(ref: string, layoutName: string | null): string {
  if (ref.includes(':') || ref.includes('/')) return ref;
  if (layoutName === null) return ref; // tagsFor refuses it, asking for --tag, unless --tag was given
  return `${layoutName.toLowerCase().replace(/[^a-z0-9._-]+/g, '-')}:${ref}`;
}

async function readSmall(file: string, dir: string, missing: string): Promise<Buffer> {
  try {
    const st = await fs.stat(file);
    if (st.size > JSON_MAX) throw new StoreError('BAD_MANIFEST', `${file} is ${st.size} bytes, more than a manifest may be`);
    return await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      const exists = await fs.stat(dir).then(() => true, () => false);
      throw exists ? new StoreError('BAD_MANIFEST', `${dir} ${missing}`, {cause: err}) : new StoreError('SOURCE_MISSING', `${dir} does not exist`, {cause: err});
    }
    throw err;
  }
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/** The host path of a blob named by a descriptor; the digest is checked first, so it cannot climb out. */
async function blobPath(dir: string, d: Descriptor, what: string): Promise<string> {
  const file = path.join(dir, 'blobs', 'sha256', d.digest.slice('sha256:'.length));
  const st = await fs.lstat(file).catch(() => undefined);
  // Blobs are read only as regular files, so a link cannot lead the import out of the layout: say so, not "missing".
  if (st?.isSymbolicLink()) throw new StoreError('BAD_MANIFEST', `${dir}: the ${what} blob ${d.digest} is a symbolic link; strata reads only regular files in a layout (copy it with cp -L)`);
  if (!st?.isFile()) throw new StoreError('BAD_MANIFEST', `${dir} lacks the ${what} blob ${d.digest}`);
  return file;
}

/** A small blob (manifest, config, index), checked against its descriptor's size and digest. */
async function readBlob(dir: string, d: Descriptor, what: string): Promise<Buffer> {
  if (d.size > JSON_MAX) throw new StoreError('BAD_MANIFEST', `${what} ${d.digest} declares ${d.size} bytes, more than a ${what} may be`);
  const file = await blobPath(dir, d, what);
  const fh = await fs.open(file, 'r');
  let bytes: Buffer;
  try {
    // Read at most one byte more than declared: enough to see a size mismatch, never a huge file.
    const buf = Buffer.alloc(d.size + 1);
    let n = 0;
    for (;;) {
      const {bytesRead} = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0 || n + bytesRead === buf.length) { n += bytesRead; break; }
      n += bytesRead;
    }
    bytes = buf.subarray(0, n);
  } finally {
    await fh.close();
  }
  if (bytes.length !== d.size) throw new StoreError('DIGEST_MISMATCH', `${what} ${d.digest} should be ${d.size} bytes but is ${bytes.length > d.size ? 'longer' : bytes.length}`);
  expectDigest(`${what} ${d.digest}`, d.digest, `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
  return bytes;
}

/** What an export wrote. */
export interface ExportedImage {
  readonly path: string;
  /** Digest of the image manifest (OCI) or of the config (docker archive), `sha256:<hex>`. */
  readonly manifest: string;
  readonly config: string;
  readonly layers: readonly LayerBlob[];
}

export interface ImageExportOptions {
  readonly compression?: Compression;
  /** The name to record: `org.opencontainers.image.ref.name` / RepoTags. */
  readonly tag?: TagRef;
  readonly onProgress?: (p: ImageProgress) => void;
}

/**
 * Writes an image as an OCI image layout in `dir` (missing or empty): blobs under
 * blobs/sha256, a manifest, a config with the DiffIDs, and an index.json naming it with
 * `tag`. Layers are gzip-compressed unless asked otherwise. The same image gives the
 * same bytes. Written beside `dir` and renamed into place at the end, so a failed export
 * leaves nothing. Throws TARGET_EXISTS, OBJECT_MISSING, NO_SPACE.
 */
export async function exportOciLayout(store: Store, image: Image, dir: string, options: ImageExportOptions = {}): Promise<ExportedImage> {
  dir = path.resolve(dir);
  const compression = options.compression ?? 'gzip';
  await checkTarget(dir, true);
  const work = `${dir}.strata-${randomBytes(6).toString('hex')}`;
  const blobs = path.join(work, 'blobs', 'sha256');
  const madeParent = makeDirs(path.dirname(dir)); // not fs.mkdir's recursive mode: it spins where mkdir cannot work (/proc)
  try {
    await fs.mkdir(work);
    await fs.mkdir(blobs, {recursive: true});
    const putJson = async (bytes: Buffer, mediaType: string): Promise<Descriptor> => {
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      await fs.writeFile(path.join(blobs, digest.slice(7)), bytes);
      return {mediaType, digest, size: bytes.length};
    };
    const layers = await writeLayers(store, image, blobs, compression, options.onProgress, b => b.digest.slice(7));
    const config = await putJson(toOciConfig(image.config, layers.map(l => l.diffId), image.platform), MEDIA.config);
    const manifest = await putJson(ociManifest(config, layers.map(l => ({mediaType: MEDIA.layer[l.compression], digest: l.digest, size: l.size}))), MEDIA.manifest);
    // The index names the platform when the image records one (image-index.md), as skopeo and umoci read it.
    const entry = {...manifest, ...(image.platform ? {platform: platformFields(image.platform)} : {}), ...(options.tag ? {annotations: {[REF_NAME]: options.tag}} : {})};
    await fs.writeFile(path.join(work, 'index.json'), JSON.stringify({schemaVersion: 2, mediaType: MEDIA.index, manifests: [entry]}));
    await fs.writeFile(path.join(work, 'oci-layout'), JSON.stringify({imageLayoutVersion: MEDIA.ociLayout}));
    await fs.rmdir(dir).catch(() => {}); // an empty target directory gives way
    await fs.rename(work, dir);
    return {path: dir, manifest: manifest.digest, config: config.digest, layers};
  } catch (err) {
    await fs.rm(work, {recursive: true, force: true});
    if (madeParent) await fs.rm(madeParent, {recursive: true, force: true});
    throw err;
  }
}

/** The bytes of an OCI image manifest (keys in a fixed order): an export and a push of one image give one digest. */
export function ociManifest(config: Descriptor, layers: readonly Descriptor[]): Buffer {
  return Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MEDIA.manifest, config, layers}));
}

/**
 * Writes each layer of an image as a tar blob in `into`, named by `name(blob)`; a layer
 * that appears twice is written once.
 */
export async function writeLayers(store: Store, image: Image, into: string, compression: Compression, onProgress: ((p: ImageProgress) => void) | undefined, name: (b: LayerBlob) => string): Promise<LayerBlob[]> {
  const out: LayerBlob[] = [];
  const done = new Map<string, LayerBlob>();
  let written = 0;
  for (const [i, id] of image.layers.entries()) {
    onProgress?.({image: 1, images: 1, layer: i + 1, layers: image.layers.length, bytes: written});
    let blob = done.get(id);
    if (!blob) {
      const tmp = path.join(into, `.tmp-${i}`);
      blob = await writeLayerTar(store, id, tmp, compression);
      await fs.rename(tmp, path.join(into, name(blob)));
      done.set(id, blob);
    }
    out.push(blob);
    written += blob.size;
    onProgress?.({image: 1, images: 1, layer: i + 1, layers: image.layers.length, bytes: written});
  }
  return out;
}

/** Refuses an export target that exists (a directory target may exist if empty). Throws TARGET_EXISTS. */
export async function checkTarget(target: string, allowEmptyDir: boolean): Promise<void> {
  const st = await fs.lstat(target).catch(() => undefined);
  if (!st) return;
  if (allowEmptyDir && st.isDirectory() && (await fs.readdir(target)).length === 0) return;
  throw new StoreError('TARGET_EXISTS', `${target} already exists${allowEmptyDir ? ' and is not an empty directory' : ''}`);
}
