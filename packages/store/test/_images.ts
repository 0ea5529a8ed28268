import type {ExecutionContext} from 'ava';
import {type Digest, importDirectory, parseTag, type Store} from '../src/index.js';
import {tempDir, writeTree} from './_helpers.js';

/** Imports `files` as one layer; with `tag`, also an image of `below` + that layer, tagged. */
export async function imageOf(t: ExecutionContext, store: Store, files: Record<string, string | null>, options: {tag?: string; below?: Digest[]} = {}): Promise<{layer: Digest; image: Digest}> {
  const dir = await tempDir(t);
  await writeTree(dir, files);
  const {layer} = await importDirectory(store, dir);
  const image = await store.putImage({layers: [...(options.below ?? []), layer.id], config: {}}, options.tag ? parseTag(options.tag) : undefined);
  return {layer: layer.id, image};
}

/** Every key of the index, in order. */
export async function indexKeys(store: Store): Promise<string[]> {
  return (await store.index.scan('')).map(([k]) => k);
}

/** A string of `n` bytes that no other call with a different `seed` repeats. */
export function bytesOf(seed: string, n: number): string {
  return `${seed}:`.repeat(Math.ceil(n / (seed.length + 1))).slice(0, n);
}
