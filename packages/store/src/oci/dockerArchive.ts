import {createHash, randomBytes} from 'node:crypto';
import {createReadStream, createWriteStream} from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {Readable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import * as tar from 'tar-stream';
import {StoreError} from '../errors.js';
import type {Image} from '../objects/image.js';
import {parseTag} from '../objects/refs.js';
import {type ImageImportOptions, type ImportedImage, type ImportedLayer, commitImages, expectDigest, importLayerBlob, tagsFor} from './importImage.js';
import {splitLayerPath} from '../import/LayerBuilder.js';
import {eachArchiveMember} from './archiveMembers.js';
import {fromOciConfig, toOciConfig} from './ociConfig.js';
import {type ExportedImage, type ImageExportOptions, JSON_MAX, checkTarget, writeLayers} from './ociLayout.js';
import type {Store} from '../objects/Store.js';

interface ArchiveImage {
  readonly config: string;
  readonly names: string[];
  readonly layers: string[];
}

/** What one pass over an image archive found: its small JSON members, its links, and every member's name. */
export interface ArchiveScan {
  readonly json: ReadonlyMap<string, Buffer>;
  readonly links: ReadonlyMap<string, string>;
  readonly members: ReadonlySet<string>;
  /** Each regular member's size, from its header. */
  readonly sizes: ReadonlyMap<string, number>;
}

/**
 * Reads an image archive once without extracting it: keeps the members that look like
 * JSON (manifest.json, configs, `blobs/` JSON up to JSON_MAX), the symlinks and hardlinks
 * (legacy docker layouts link identical layers), and every regular member's name.
 * Throws SOURCE_MISSING, BAD_ARCHIVE.
 */
export async function scanArchive(file: string): Promise<ArchiveScan> {
  const json = new Map<string, Buffer>();
  const links = new Map<string, string>();
  const members = new Set<string>();
  const sizes = new Map<string, number>();
  await eachArchiveMember(file, async (name, header, body) => {
    if (header.type === 'symlink' || header.type === 'link') {
      const target = header.type === 'link' ? header.linkname ?? '' : path.posix.join(path.posix.dirname(name), header.linkname ?? '');
      links.set(name, splitLayerPath(target).join('/'));
    } else if (header.type === 'file' || header.type === 'contiguous-file') {
      members.add(name);
      sizes.set(name, header.size ?? 0);
      // manifest.json and configs: `*.json`, or (docker 25 and later) JSON blobs under blobs/sha256.
      if ((header.size ?? 0) <= JSON_MAX && (name.endsWith('.json') || name.startsWith('blobs/'))) {
        const doc = await readJsonMember(body);
        if (doc) json.set(name, doc);
      }
    }
  });
  return {json, links, members, sizes};
}

/**
 * Imports the images of a `docker save` archive (plain or compressed tar): manifest.json
 * names each image's config and layer members (symlinked members are followed inside
 * the archive), RepoTags name it (or `tag`). Two passes over the archive and no
 * extraction: the first (`scanArchive`, or `scan` when the caller made it) reads
 * manifest.json and the configs, the second imports the layer members as they stream by.
 * A config named by its digest is checked against it; every layer against the config's
 * DiffID. Nothing becomes visible unless all images import. Throws BAD_MANIFEST,
 * DIGEST_MISMATCH, BAD_REFERENCE, BAD_ARCHIVE, SOURCE_MISSING.
 */
export async function importDockerArchive(store: Store, file: string, options: ImageImportOptions = {}, scan?: ArchiveScan): Promise<ImportedImage[]> {
  // A failed import removes what it wrote (a full disk above all), not only its record.
  return store.undoOnFailure(() => readDockerArchive(store, file, options, scan));
}

async function readDockerArchive(store: Store, file: string, options: ImageImportOptions, scan?: ArchiveScan): Promise<ImportedImage[]> {
  file = path.resolve(file);
  const {json, links, members, sizes} = scan ?? await scanArchive(file);
  const manifestBytes = json.get('manifest.json');
  if (!manifestBytes) throw new StoreError('BAD_MANIFEST', `${file} is not a docker archive (it has no manifest.json)`);
  let manifest: unknown;
  try {
    manifest = JSON.parse(manifestBytes.toString('utf8'));
  } catch (err) {
    throw new StoreError('BAD_MANIFEST', `${file}: manifest.json is not valid JSON`, {cause: err});
  }
  if (!Array.isArray(manifest) || manifest.length === 0) throw new StoreError('BAD_MANIFEST', `${file}: manifest.json lists no images`);
  const resolve = (name: string): string => {
    let n = splitLayerPath(name).join('/');
    for (let hops = 0; links.has(n); hops++) {
      if (hops > 40) throw new StoreError('BAD_MANIFEST', `${file}: member ${name} is a loop of links`);
      n = links.get(n)!;
    }
    return n;
  };
  const all: ArchiveImage[] = manifest.map((m: {Config?: unknown; RepoTags?: unknown; Layers?: unknown}, i) => {
    if (typeof m?.Config !== 'string' || !Array.isArray(m.Layers) || !m.Layers.every(l => typeof l === 'string'))
      throw new StoreError('BAD_MANIFEST', `${file}: image ${i} of manifest.json has no Config or Layers`);
    const names = Array.isArray(m.RepoTags) ? m.RepoTags.filter((t): t is string => typeof t === 'string') : [];
    return {config: resolve(m.Config), names, layers: (m.Layers as string[]).map(resolve)};
  });
  // `docker-archive:FILE:NAME:TAG` takes the one image of that name, as skopeo does.
  const wantedName = options.ref === undefined ? undefined : parseTag(options.ref);
  const images = wantedName === undefined ? all : all.filter(img => img.names.some(n => { try { return parseTag(n) === wantedName; } catch { return false; } }));
  if (images.length === 0) throw new StoreError('SOURCE_MISSING', `${file} has no image named ${wantedName}`);
  const tags = tagsFor(images, options.tag, file, i => `${i.config} ${i.layers.join(' ')}`);
  const configs = images.map(img => {
    const bytes = json.get(img.config);
    if (!bytes) throw new StoreError('BAD_MANIFEST', `${file} lacks the config ${img.config} that manifest.json names`);
    const hex = /^(?:blobs\/sha256\/)?([0-9a-f]{64})(?:\.json)?$/.exec(img.config)?.[1];
    if (hex) expectDigest(`config ${img.config}`, `sha256:${hex}`, `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
    const parsed = fromOciConfig(bytes, `config ${img.config}`);
    if (parsed.diffIds.length !== img.layers.length)
      throw new StoreError('BAD_MANIFEST', `${file}: image ${img.config} has ${img.layers.length} layers but its config lists ${parsed.diffIds.length} DiffIDs`);
    return parsed;
  });
  const wanted = new Set(images.flatMap(i => i.layers));
  for (const w of wanted) if (!members.has(w)) throw new StoreError('BAD_MANIFEST', `${file} lacks the layer ${w} that manifest.json names`);

  // Pass 2: the layers, in archive order.
  const imported = new Map<string, ImportedLayer>();
  const totalBytes = [...wanted].reduce((n, w) => n + (sizes.get(w) ?? 0), 0);
  let doneBytes = 0;
  await eachArchiveMember(file, async (name, header, body) => {
    if (!wanted.has(name) || imported.has(name) || (header.type !== 'file' && header.type !== 'contiguous-file')) return;
    // Layers stream by in archive order: show each as a layer of the first image that uses it.
    const i = images.findIndex(img => img.layers.includes(name));
    const at = {image: i + 1, images: images.length, layer: images[i]!.layers.indexOf(name) + 1, layers: images[i]!.layers.length, totalBytes};
    options.onProgress?.({...at, bytes: doneBytes});
    const layer = await importLayerBlob(store, body, `${file} ${name}`, bytes => options.onProgress?.({...at, bytes: doneBytes + bytes}), options.maxLayerBytes);
    imported.set(name, layer);
    doneBytes += layer.size;
  });
  return commitImages(store, images.map((img, i) => ({
    config: configs[i]!.config,
    ...(configs[i]!.platform ? {platform: configs[i]!.platform} : {}),
    tags: tags[i]!,
    layers: img.layers.map((l, j) => {
      const layer = imported.get(l)!;
      expectDigest(`layer ${l} (uncompressed)`, configs[i]!.diffIds[j]!, layer.diffId);
      return layer;
    }),
  })));
}

/** A member's bytes if it looks like JSON (starts with `{` or `[`); read to its end either way. */
async function readJsonMember(body: Readable): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let isJson: boolean | undefined;
  for await (const c of body) {
    isJson ??= (c as Buffer)[0] === 0x7b || (c as Buffer)[0] === 0x5b; // { or [
    if (isJson) chunks.push(c as Buffer);
  }
  return isJson ? Buffer.concat(chunks) : undefined;
}

/**
 * Writes an image as a `docker save` archive (docker's image spec v1.2 layout, as
 * `docker load` and skopeo's docker-archive read it): `<digest>.tar` layer members,
 * `<digest>.json` config, manifest.json with RepoTags. Layers are uncompressed unless
 * asked otherwise. Members in a fixed order with fixed metadata, so the same image gives
 * the same bytes. Written to a temporary file and renamed. Throws TARGET_EXISTS.
 */
export async function exportDockerArchive(store: Store, image: Image, file: string, options: ImageExportOptions = {}): Promise<ExportedImage> {
  file = path.resolve(file);
  const compression = options.compression ?? 'none';
  await checkTarget(file, false);
  const work = store.tmpPath('export');
  await fs.mkdir(work, {recursive: true});
  const tmp = `${file}.strata-${randomBytes(6).toString('hex')}`;
  try {
    const layers = await writeLayers(store, image, work, compression, options.onProgress, b => b.digest.slice(7));
    const config = toOciConfig(image.config, layers.map(l => l.diffId), image.platform);
    const configHex = createHash('sha256').update(config).digest('hex');
    const layerNames = layers.map(l => `${l.digest.slice(7)}.tar`);
    const manifest = Buffer.from(JSON.stringify([{Config: `${configHex}.json`, RepoTags: options.tag ? [options.tag] : null, Layers: layerNames}]));
    const pack = tar.pack();
    const out = pipeline(pack as unknown as Readable, createWriteStream(tmp, {flags: 'wx'}));
    out.catch(() => {}); // awaited below; a write failure also fails the entry being written
    const meta = {mode: 0o644, uid: 0, gid: 0, mtime: new Date(0), uname: '', gname: ''};
    const put = (name: string, size: number, body: Buffer | Readable) => new Promise<void>((resolve, reject) => {
      const sink = pack.entry({...meta, name, size, type: 'file'}, err => (err ? reject(err) : resolve()));
      sink.on('error', err => {
        if (!Buffer.isBuffer(body)) body.destroy();
        reject(err);
      });
      if (Buffer.isBuffer(body)) sink.end(body);
      else body.on('error', err => sink.destroy(err)).pipe(sink as unknown as NodeJS.WritableStream);
    });
    const written = new Set<string>();
    for (const [i, l] of layers.entries()) {
      if (written.has(layerNames[i]!)) continue;
      written.add(layerNames[i]!);
      await put(layerNames[i]!, l.size, createReadStream(path.join(work, l.digest.slice(7))));
    }
    await put(`${configHex}.json`, config.length, config);
    await put('manifest.json', manifest.length, manifest);
    pack.finalize();
    await out;
    await fs.rename(tmp, file);
    return {path: file, manifest: `sha256:${configHex}`, config: `sha256:${configHex}`, layers};
  } catch (err) {
    await fs.rm(tmp, {force: true});
    throw err;
  } finally {
    await fs.rm(work, {recursive: true, force: true});
  }
}
