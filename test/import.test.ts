import * as path from 'node:path';
import test from 'ava';
import {strata, tempDir, tempStore} from './_cli.js';
import {DIGEST, jsonOf, writeTar, writeTree} from './_fixtures.js';

// 5 entries (etc, etc/hostname, bin, bin/app, empty), 7 + 100,000 file bytes, and
// 6 objects: 2 blobs and 4 trees (the root, etc, bin, empty).
const TREE = {'etc/hostname': 'strata\n', 'bin/app': 'x'.repeat(100_000), 'empty': null};
const TREE_BYTES = 100_007;

async function sourceDir(t: Parameters<typeof tempDir>[0]): Promise<string> {
  const dir = path.join(await tempDir(t), 'rootfs');
  await writeTree(dir, TREE);
  return dir;
}

test('import of a directory with --tag --json reports the layer, the image and what was stored', async t => {
  const store = await tempStore(t);
  const r = await strata(['import', await sourceDir(t), '--tag', 'base:1', '--json'], {store});
  const out = jsonOf<Record<string, unknown>>(t, r);
  t.regex(String(out.layer), DIGEST);
  t.regex(String(out.image), DIGEST);
  t.deepEqual(out, {layer: out.layer, image: out.image, tag: 'base:1', layers: 1, entries: 5, bytes: TREE_BYTES, newBytes: TREE_BYTES, newObjects: 6});
  t.is(r.stderr, '', 'no progress or notes when stderr is not a terminal');
});

test('the second import of the same tree stores nothing new and says so', async t => {
  const store = await tempStore(t);
  const dir = await sourceDir(t);
  const first = jsonOf<{layer: string}>(t, await strata(['import', dir, '--json'], {store}));
  const again = await strata(['import', dir], {store});
  t.is(again.code, 0, again.stderr);
  t.is(again.stdout, `layer ${first.layer} (5 entries, 97.7 KiB; stored 0 B new)\n`);
  t.deepEqual(jsonOf(t, await strata(['import', dir, '--json'], {store})), {layer: first.layer, entries: 5, bytes: TREE_BYTES, newBytes: 0, newObjects: 0});
});

test('the same import with the same tag gives the same image id', async t => {
  const store = await tempStore(t);
  const dir = await sourceDir(t);
  const a = jsonOf<{image: string}>(t, await strata(['import', dir, '--tag', 'a:1', '--json'], {store}));
  const b = jsonOf<{image: string}>(t, await strata(['import', dir, '--tag', 'a:1', '--json'], {store}));
  t.is(a.image, b.image);
});

test('import of a tar.gz --on an image stacks the new layer on its layers and keeps the history', async t => {
  const store = await tempStore(t);
  const base = jsonOf<{layer: string}>(t, await strata(['import', await sourceDir(t), '--tag', 'base:1', '--json'], {store}));
  const tar = await writeTar(path.join(await tempDir(t), 'app.tar.gz'), [
    {name: 'app/', type: '5'},
    {name: 'app/run.sh', content: 'echo hi\n', mode: 0o755},
    {name: 'app/latest', type: '2', linkname: 'run.sh'},
  ]);
  const app = jsonOf<Record<string, unknown>>(t, await strata(['import', tar, '--on', 'base:1', '--tag', 'app:1', '-m', 'add the app', '--json'], {store}));
  t.deepEqual(app, {layer: app.layer, image: app.image, tag: 'app:1', layers: 2, entries: 3, bytes: 8, newBytes: 8, newObjects: app.newObjects});
  t.not(app.layer, base.layer);
  const inspected = jsonOf<{platform: {os: string}}>(t, await strata(['image', 'inspect', 'app:1', '--json'], {store}));
  t.deepEqual(inspected, {
    id: app.image,
    tags: ['app:1'],
    layers: [{id: base.layer, entries: 5, bytes: TREE_BYTES}, {id: app.layer, entries: 3, bytes: 8}],
    bytes: TREE_BYTES + 8,
    config: {history: [{createdBy: 'strata import'}, {createdBy: 'strata import', comment: 'add the app'}]},
    platform: inspected.platform, // the host's, which base:1 (a directory) was given
  });
  t.is(inspected.platform.os, 'linux');
});

test('import of a plain tar gives the same layer as the same tar gzip-compressed', async t => {
  const store = await tempStore(t);
  const dir = await tempDir(t);
  const members = [{name: 'a.txt', content: 'alpha'}, {name: 'd/', type: '5' as const}];
  const plain = jsonOf<{layer: string}>(t, await strata(['import', await writeTar(path.join(dir, 'x.tar'), members), '--json'], {store}));
  const gz = jsonOf<{layer: string; newObjects: number}>(t, await strata(['import', await writeTar(path.join(dir, 'x.tar.gz'), members), '--json'], {store}));
  t.is(gz.layer, plain.layer);
  t.is(gz.newObjects, 0);
});
