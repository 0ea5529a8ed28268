#!/usr/bin/env node
// One store operation through the library, as the CLI commands do it, for the gc and
// disk-full tests: node scripts/strata-op.js STORE OP SEED [SRC]
//   import  generate a tree from SEED (or take SRC), import it, tag it op-SEED:1
//   commit  create a container on a tagged image, change files, commit, tag it commit-SEED:1
//   gc      collect garbage
//   untag   remove the tag op-SEED:1
// Prints one JSON line on success. A kill at any moment must leave a consistent store.
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';
import {generateTree} from './generateTree.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const store_ = await import(path.join(root, 'packages/store/dist/src/index.js'));
const union = await import(path.join(root, 'packages/union/dist/src/index.js'));
const [dir, op, seedArg, source] = process.argv.slice(2);
const seed = Number(seedArg ?? 0);

// Coded errors end as one line on stderr and exit 1, as the CLI prints them.
process.on('uncaughtException', err => {
  if (err.name !== 'StoreError') throw err;
  process.stderr.write(`strata: ${err.message} (${err.code})\n`);
  process.exit(1);
});
const store = await store_.Store.open(dir, {create: true});
try {
  let out;
  if (op === 'import') {
    const src = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-op-'));
    try {
      if (!source) await generateTree(src, seed);
      const {layer} = await store_.importLayer(store, source ?? src);
      const image = await store.putImage({layers: [layer.id], config: {}}, store_.parseTag(`op-${seed}:1`));
      out = {layer: layer.id, image};
    } finally {
      await fs.rm(src, {recursive: true, force: true});
    }
  } else if (op === 'commit') {
    const tags = await store.listTags();
    if (tags.length === 0) out = {skipped: 'no image'};
    else {
      const base = tags[seed % tags.length];
      const c = await union.createContainer(store, {image: base.image});
      const view = await union.openContainerView(store, c);
      await view.writeFile(union.parseViewPath(`/changed-${seed}`), Buffer.from(`commit ${seed}\n`.repeat(50)));
      await view.writeFile(union.parseViewPath(`/big-${seed}`), Buffer.alloc(100_000, seed % 13));
      const r = await union.commitContainer(store, c, {tag: store_.parseTag(`commit-${seed}:1`)});
      await union.removeContainer(store, c.id);
      out = {layer: r.layer.id, image: r.image};
    }
  } else if (op === 'gc') {
    const r = await store_.collectGarbage(store);
    out = {objects: r.objects, bytes: r.bytes};
  } else if (op === 'untag') {
    out = {removed: await store.deleteTag(store_.parseTag(`op-${seed}:1`))};
  } else {
    throw new Error(`unknown op ${op}`);
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  await store.close();
}
