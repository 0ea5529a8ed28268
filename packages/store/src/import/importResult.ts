import type {Digest} from '../objects/digest.js';
import type {LayerBuilder} from './LayerBuilder.js';
import type {LayerRecord, Store} from '../objects/Store.js';
import {writeLayerPack} from '../meta/layerPacks.js';

export interface ImportProgress {
  readonly files: number;
  readonly bytes: number;
  /** Known for directories (after the walk); unknown while a tar streams. */
  readonly totalFiles?: number;
}

export interface ImportOptions {
  /** Called as files are stored; cheap to ignore. */
  readonly onProgress?: (p: ImportProgress) => void;
  /** Recorded in the layer record for people (a path, "commit of web"). */
  readonly source?: string;
  /**
   * Write the trees but not the layer record: the caller commits the record later with
   * others (an image import commits all its layers and the image in one batch).
   */
  readonly deferRecord?: boolean;
}

export interface ImportResult {
  readonly layer: LayerRecord;
  /** Bytes of blobs this import added to the store (0 when everything was there already). */
  readonly newBytes: number;
  /** Objects (blobs and trees) this import added. */
  readonly newObjects: number;
}

/** Writes the builder's trees, then the layer record: the import's commit point. */
export async function finishImport(store: Store, builder: LayerBuilder, options: ImportOptions, before: {objects: number; blobBytes: number}): Promise<ImportResult> {
  return finishLayer(store, await builder.write(store), options, before);
}

/**
 * Writes the layer record of trees already written: the import's commit point. `inlineBlobs`,
 * when the import collected them, are the layer's inline blobs (digest -> size), exactly
 * those its trees name (else its pack reads the trees again to find them).
 */
export async function finishLayer(store: Store, {root, entries, bytes, inlineBlobs}: {root: Digest; entries: number; bytes: number; inlineBlobs?: ReadonlyMap<Digest, number>}, options: ImportOptions, before: {objects: number; blobBytes: number}): Promise<ImportResult> {
  const layer = {id: root as Digest, entries, bytes, created: new Date().toISOString(), ...(options.source ? {source: options.source} : {})};
  const existing = await store.getLayer(root);
  // The layer's small-blob pack, so that a first mount reads none of its small blobs
  // (meta/layerPacks.ts): written, not synced (the first build to use it checks and syncs
  // it), and before the record, so a damaged blob fails the import before its commit point.
  writeLayerPack(store, root, inlineBlobs);
  if (!existing && !options.deferRecord) await store.putLayer(layer);
  const after = store.writeCounters();
  return {layer: existing ?? layer, newBytes: after.blobBytes - before.blobBytes, newObjects: after.objects - before.objects};
}
