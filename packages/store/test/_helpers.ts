import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type {ExecutionContext} from 'ava';
import {Store} from '../src/index.js';

/** A fresh temporary directory, deleted when the test ends. */
export async function tempDir(t: ExecutionContext, label = 'strata-test-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), label));
  t.teardown(() => fs.rm(dir, {recursive: true, force: true}));
  return dir;
}

/** A fresh store in a temporary directory; closed and deleted when the test ends. */
export async function openTempStore(t: ExecutionContext): Promise<Store> {
  const store = await Store.open(path.join(await tempDir(t, 'strata-store-'), 'store'), {create: true});
  t.teardown(() => store.close());
  return store;
}

/** Writes a tree of files: path -> content (a string), or null for a directory. */
export async function writeTree(root: string, files: Record<string, string | null>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(root, rel);
    if (content === null) await fs.mkdir(p, {recursive: true});
    else {
      await fs.mkdir(path.dirname(p), {recursive: true});
      await fs.writeFile(p, content);
    }
  }
}
