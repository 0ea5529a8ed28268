import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test from 'ava';
import {exportDockerArchive, exportOciLayout, importDockerArchive, importOciLayout} from '../src/index.js';
import {hostPlatform} from '../src/oci/ociConfig.js';
import {openTempStore, tempDir} from './_helpers.js';
import {tarBytes, writeLayout} from './_oci.js';

const LAYER = () => tarBytes([{name: 'etc/', type: 'directory'}, {name: 'etc/os', content: 'strata\n'}]);

async function importWith(t: Parameters<typeof tempDir>[0], store: Awaited<ReturnType<typeof openTempStore>>, config: Record<string, unknown>, refName: string) {
  const dir = path.join(await tempDir(t), 'img');
  await writeLayout(dir, [await LAYER()], {config, refName});
  const [img] = await importOciLayout(store, dir);
  return img!;
}

test('the same layers for arm64 and amd64 are two images, each keeping its platform', async t => {
  const store = await openTempStore(t);
  const arm = await importWith(t, store, {architecture: 'arm64', os: 'linux', variant: 'v8'}, 'app:arm');
  const amd = await importWith(t, store, {architecture: 'amd64', os: 'linux'}, 'app:amd');
  t.deepEqual(arm.layers.map(l => l.id), amd.layers.map(l => l.id));
  t.not(arm.id, amd.id);
  t.deepEqual((await store.getImage(arm.id))!.platform, {architecture: 'arm64', os: 'linux', variant: 'v8'});
  t.deepEqual((await store.getImage(amd.id))!.platform, {architecture: 'amd64', os: 'linux'});
});

test('an OCI export names the platform the image was imported with, in its config and its index', async t => {
  const store = await openTempStore(t);
  const arm = await importWith(t, store, {architecture: 'arm64', os: 'linux', variant: 'v8'}, 'app:arm');
  const out = path.join(await tempDir(t), 'out');
  const exported = await exportOciLayout(store, (await store.getImage(arm.id))!, out);
  const config = JSON.parse(await fs.readFile(path.join(out, 'blobs', 'sha256', exported.config.slice(7)), 'utf8'));
  t.like(config, {architecture: 'arm64', os: 'linux', variant: 'v8'});
  const index = JSON.parse(await fs.readFile(path.join(out, 'index.json'), 'utf8'));
  t.deepEqual(index.manifests[0].platform, {architecture: 'arm64', os: 'linux', variant: 'v8'});
  // Imported again, the export is the same image.
  const again = await openTempStore(t);
  const [img] = await importOciLayout(again, out);
  t.is(img!.id, arm.id);
});

test('a docker archive export keeps the platform, and imports as the same image', async t => {
  const store = await openTempStore(t);
  const arm = await importWith(t, store, {architecture: 'arm', os: 'linux', variant: 'v7'}, 'app:arm');
  const file = path.join(await tempDir(t), 'app.tar');
  await exportDockerArchive(store, (await store.getImage(arm.id))!, file);
  const again = await openTempStore(t);
  const [img] = await importDockerArchive(again, file);
  t.is(img!.id, arm.id);
  t.deepEqual((await again.getImage(img!.id))!.platform, {architecture: 'arm', os: 'linux', variant: 'v7'});
});

test('an image that names no platform keeps its id and exports the host platform without an index platform', async t => {
  const store = await openTempStore(t);
  const img = await importWith(t, store, {architecture: undefined, os: undefined}, 'app:none');
  const image = (await store.getImage(img.id))!;
  t.is(image.platform, undefined);
  const out = path.join(await tempDir(t), 'out');
  const exported = await exportOciLayout(store, image, out);
  const config = JSON.parse(await fs.readFile(path.join(out, 'blobs', 'sha256', exported.config.slice(7)), 'utf8'));
  t.like(config, hostPlatform());
  t.is(JSON.parse(await fs.readFile(path.join(out, 'index.json'), 'utf8')).manifests[0].platform, undefined);
});
