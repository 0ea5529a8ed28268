import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {type Store, exportDockerArchive, exportOciLayout, importDockerArchive, importOciLayout, parseTag} from '../src/index.js';
import {openTempStore, tempDir} from './_helpers.js';
import {sha256, tarBytes, writeLayout} from './_oci.js';

const BASE = () => tarBytes([{name: 'etc/', type: 'directory'}, {name: 'etc/os', content: 'strata\n'}, {name: 'old/', type: 'directory'}, {name: 'old/f', content: 'old'}]);
const TOP = () => tarBytes([{name: '.wh.old', content: ''}, {name: 'etc/.wh.os', content: ''}, {name: 'new', content: 'new'}]);

/** Everything visible in the index: layers, images and tags. */
async function refs(store: Store) {
  return {layers: (await store.listLayers()).map(l => l.id), images: (await store.listImages()).map(i => i.id), tags: await store.listTags()};
}

async function treeBytes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await fs.readdir(dir, {recursive: true, withFileTypes: true})) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath, e.name);
    out[path.relative(dir, p)] = sha256(await fs.readFile(p));
  }
  return out;
}

async function layout(t: ExecutionContext, options: Parameters<typeof writeLayout>[2] = {}) {
  const dir = path.join(await tempDir(t), 'img');
  const paths = await writeLayout(dir, [await BASE(), await TOP()], options);
  return {dir, ...paths};
}

test('an OCI layout imports as layers, config and the tag its index names', async t => {
  const store = await openTempStore(t);
  const {dir} = await layout(t, {gzip: true, config: {config: {Env: ['A=1'], Cmd: ['sh'], Entrypoint: ['/init'], WorkingDir: '/w', User: '1:2', Labels: {b: '2', a: '1'}}, history: [{created_by: 'one'}, {created_by: 'env', empty_layer: true}, {created_by: 'two', comment: 'c'}]}});
  const [img] = await importOciLayout(store, dir);
  t.deepEqual(img!.tags, ['test:1']);
  t.is(img!.layers.length, 2);
  const image = (await store.getImage(img!.id))!;
  t.deepEqual(image.config, {env: ['A=1'], cmd: ['sh'], entrypoint: ['/init'], workingDir: '/w', user: '1:2', labels: {a: '1', b: '2'}, history: [{createdBy: 'one'}, {createdBy: 'env', emptyLayer: true}, {createdBy: 'two', comment: 'c'}]});
  t.is(await store.getTag(parseTag('test:1')), img!.id);
  const top = await store.getTree(image.layers[1]!);
  t.deepEqual(top.entries.map(e => [e.name, e.kind]), [['etc', 'dir'], ['new', 'file'], ['old', 'whiteout']]);
});

test('importing a layout again stores nothing new and gives the same ids', async t => {
  const store = await openTempStore(t);
  const {dir} = await layout(t);
  const [a] = await importOciLayout(store, dir);
  const [b] = await importOciLayout(store, dir, {tag: 'other:2'});
  t.is(b!.id, a!.id);
  t.is(b!.newBytes, 0);
  t.deepEqual(b!.tags, ['other:2']);
});

test('a bare tag as ref name takes the layout directory as its name', async t => {
  const store = await openTempStore(t);
  const {dir} = await layout(t, {refName: 'latest'});
  t.deepEqual((await importOciLayout(store, dir))[0]!.tags, ['img:latest']);
});

for (const format of ['oci', 'docker'] as const) {
  for (const compression of ['gzip', 'zstd', 'none'] as const) {
    test(`export as ${format} with ${compression}, re-import: same image and layer ids; byte-identical twice`, async t => {
      const store = await openTempStore(t);
      const [img] = await importOciLayout(store, (await layout(t, {config: {history: [{created_by: 'x'}]}})).dir);
      const image = (await store.getImage(img!.id))!;
      const out = await tempDir(t);
      const exp = format === 'oci' ? exportOciLayout : exportDockerArchive;
      const a = path.join(out, 'a'), b = path.join(out, 'b');
      const ra = await exp(store, image, a, {compression, tag: parseTag('re:1')});
      await exp(store, image, b, {compression, tag: parseTag('re:1')});
      if (format === 'oci') t.deepEqual(await treeBytes(a), await treeBytes(b));
      else t.true((await fs.readFile(a)).equals(await fs.readFile(b)));
      const [again] = await (format === 'oci' ? importOciLayout : importDockerArchive)(store, a);
      t.deepEqual(again!.layers.map(l => l.diffId), ra.layers.map(l => l.diffId), 'the DiffIDs are the plain tars\' digests, whatever the compression');
      t.is(again!.id, img!.id);
      t.deepEqual(again!.tags, ['re:1']);
      t.is(again!.newBytes, 0);
    });
  }
}

test('a layer blob that does not match its digest fails the import and stores nothing', async t => {
  const store = await openTempStore(t);
  const {dir, layers} = await layout(t);
  const before = await refs(store);
  const bytes = await fs.readFile(layers[1]!);
  bytes.writeUInt8(bytes.readUInt8(600) ^ 1, 600); // in the second member's header
  await fs.writeFile(layers[1]!, bytes);
  await t.throwsAsync(importOciLayout(store, dir), {code: 'DIGEST_MISMATCH'});
  t.deepEqual(await refs(store), before);
});

test('a layer blob with one changed byte in a file\'s data is a digest mismatch too', async t => {
  const store = await openTempStore(t);
  const {dir, layers} = await layout(t);
  const bytes = await fs.readFile(layers[0]!);
  bytes.writeUInt8(bytes.readUInt8(1024) ^ 1, 1024); // the first byte of etc/os
  await fs.writeFile(layers[0]!, bytes);
  await t.throwsAsync(importOciLayout(store, dir), {code: 'DIGEST_MISMATCH'});
  t.deepEqual(await refs(store), {layers: [], images: [], tags: []});
});

test('a manifest whose digest does not match its blob is refused', async t => {
  const store = await openTempStore(t);
  const {dir, manifest} = await layout(t);
  const m = JSON.parse(await fs.readFile(manifest, 'utf8'));
  await fs.writeFile(manifest, JSON.stringify({...m, annotations: {x: 'y'}}).slice(0, (await fs.stat(manifest)).size).padEnd((await fs.stat(manifest)).size));
  await t.throwsAsync(importOciLayout(store, dir), {code: 'DIGEST_MISMATCH'});
  t.deepEqual(await refs(store), {layers: [], images: [], tags: []});
});

test('a layer that does not match its DiffID is refused', async t => {
  const store = await openTempStore(t);
  const {dir} = await layout(t, {gzip: true, diffIds: [sha256(await BASE()), sha256(Buffer.from('not it'))]});
  await t.throwsAsync(importOciLayout(store, dir), {code: 'DIGEST_MISMATCH'});
  t.deepEqual(await refs(store), {layers: [], images: [], tags: []});
});

test('a config with fewer DiffIDs than layers, a missing blob, or a directory that is no layout is BAD_MANIFEST', async t => {
  const store = await openTempStore(t);
  await t.throwsAsync(importOciLayout(store, (await layout(t, {diffIds: [sha256(await BASE())]})).dir), {code: 'BAD_MANIFEST'});
  const {dir, layers} = await layout(t);
  await fs.rm(layers[0]!);
  await t.throwsAsync(importOciLayout(store, dir), {code: 'BAD_MANIFEST'});
  await t.throwsAsync(importOciLayout(store, await tempDir(t)), {code: 'BAD_MANIFEST'});
  await t.throwsAsync(importOciLayout(store, path.join(await tempDir(t), 'missing')), {code: 'SOURCE_MISSING'});
  t.deepEqual(await refs(store), {layers: [], images: [], tags: []});
});

test('a descriptor digest with a path in it is refused before any file is opened', async t => {
  const store = await openTempStore(t);
  const {dir} = await layout(t);
  const index = JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8'));
  index.manifests[0].digest = 'sha256:../../../../etc/passwd';
  await fs.writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
  await t.throwsAsync(importOciLayout(store, dir), {code: 'BAD_MANIFEST'});
});

test('exports refuse a target that exists, and leave it alone', async t => {
  const store = await openTempStore(t);
  const [img] = await importOciLayout(store, (await layout(t)).dir);
  const image = (await store.getImage(img!.id))!;
  const out = await tempDir(t);
  await fs.writeFile(path.join(out, 'keep'), 'mine');
  await t.throwsAsync(exportOciLayout(store, image, out), {code: 'TARGET_EXISTS'});
  await t.throwsAsync(exportDockerArchive(store, image, path.join(out, 'keep')), {code: 'TARGET_EXISTS'});
  t.deepEqual(await fs.readdir(out), ['keep']);
  t.is(await fs.readFile(path.join(out, 'keep'), 'utf8'), 'mine');
});

test('a docker archive with symlinked layer members and two images imports both, by RepoTags', async t => {
  const store = await openTempStore(t);
  const base = await BASE(), top = await TOP();
  const config = (n: number) => Buffer.from(JSON.stringify({architecture: 'amd64', os: 'linux', config: {Cmd: [`c${n}`]}, rootfs: {type: 'layers', diff_ids: [base, top].slice(0, n).map(sha256)}}));
  const [c1, c2] = [config(1), config(2)];
  const archive = await tarBytes([
    {name: 'l1/', type: 'directory'}, {name: 'l1/layer.tar', content: base},
    {name: 'l2/', type: 'directory'}, {name: 'l2/layer.tar', content: top},
    {name: 'l3/', type: 'directory'}, {name: 'l3/layer.tar', type: 'symlink', linkname: '../l1/layer.tar'},
    {name: `${sha256(c1).slice(7)}.json`, content: c1}, {name: `${sha256(c2).slice(7)}.json`, content: c2},
    {name: 'manifest.json', content: JSON.stringify([
      {Config: `${sha256(c1).slice(7)}.json`, RepoTags: ['one:1'], Layers: ['l3/layer.tar']},
      {Config: `${sha256(c2).slice(7)}.json`, RepoTags: ['two:1', 'two:latest'], Layers: ['l1/layer.tar', 'l2/layer.tar']},
    ])},
  ]);
  const file = path.join(await tempDir(t), 'save.tar');
  await fs.writeFile(file, archive);
  const imgs = await importDockerArchive(store, file);
  t.deepEqual(imgs.map(i => i.tags), [['one:1'], ['two:1', 'two:latest']]);
  t.is(imgs[0]!.layers[0]!.id, imgs[1]!.layers[0]!.id, 'the symlinked member is the same layer');
  await t.throwsAsync(importDockerArchive(store, file, {tag: 'x:1'}), {code: 'BAD_REFERENCE'});
});

test('a docker archive whose config does not match its name, or that lacks a layer, is refused', async t => {
  const store = await openTempStore(t);
  const base = await BASE();
  const config = Buffer.from(JSON.stringify({rootfs: {type: 'layers', diff_ids: [sha256(base)]}}));
  const dir = await tempDir(t);
  const bad = path.join(dir, 'bad.tar');
  await fs.writeFile(bad, await tarBytes([
    {name: 'l.tar', content: base}, {name: `${'0'.repeat(64)}.json`, content: config},
    {name: 'manifest.json', content: JSON.stringify([{Config: `${'0'.repeat(64)}.json`, RepoTags: ['a:1'], Layers: ['l.tar']}])},
  ]));
  await t.throwsAsync(importDockerArchive(store, bad), {code: 'DIGEST_MISMATCH'});
  const lacking = path.join(dir, 'lacking.tar');
  await fs.writeFile(lacking, await tarBytes([
    {name: 'c.json', content: config}, {name: 'manifest.json', content: JSON.stringify([{Config: 'c.json', RepoTags: ['a:1'], Layers: ['l.tar']}])},
  ]));
  await t.throwsAsync(importDockerArchive(store, lacking), {code: 'BAD_MANIFEST'});
  t.deepEqual(await refs(store), {layers: [], images: [], tags: []});
});
