import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {strata} from './_cli.js';
import {jsonOf, mustRun, storeTemplate, writeTree} from './_fixtures.js';

/** A store with base:1 (one layer) and app:1 (base's layer + one more), and their ids. */
const two = storeTemplate(async (store, scratch) => {
  await writeTree(path.join(scratch, 'base'), {'etc/os-release': 'ID=strata\n'});
  await writeTree(path.join(scratch, 'app'), {'app/main.js': 'console.log(1)\n'});
  await fs.chmod(path.join(scratch, 'app', 'app'), 0o755); // whatever the umask
  const base = JSON.parse(await mustRun(['import', path.join(scratch, 'base'), '--tag', 'base:1', '--json'], store)) as {layer: string; image: string};
  const app = JSON.parse(await mustRun(['import', path.join(scratch, 'app'), '--on', 'base:1', '--tag', 'app:1', '--json'], store)) as {layer: string; image: string};
  return {base, app};
});

async function twoImages(t: ExecutionContext) {
  const {store, made} = await two.copy(t);
  return {store, ...made};
}

test('images lists every image with its tags, layer count and size', async t => {
  const {store, base, app} = await twoImages(t);
  t.deepEqual(jsonOf(t, await strata(['images', '--json'], {store})), [
    {id: app.image, tags: ['app:1'], layers: 2, bytes: 10 + 15},
    {id: base.image, tags: ['base:1'], layers: 1, bytes: 10},
  ]);
  const table = await strata(['images'], {store});
  t.is(table.stdout, [
    'TAG     ID            LAYERS  SIZE',
    `app:1   ${app.image.slice(3, 15)}       2  25 B`,
    `base:1  ${base.image.slice(3, 15)}       1  10 B`,
    '',
  ].join('\n'));
});

test('image inspect finds an image by tag, full id and id prefix alike', async t => {
  const {store, app} = await twoImages(t);
  const byTag = jsonOf(t, await strata(['image', 'inspect', 'app:1', '--json'], {store}));
  t.deepEqual(jsonOf(t, await strata(['image', 'inspect', app.image, '--json'], {store})), byTag);
  t.deepEqual(jsonOf(t, await strata(['image', 'inspect', app.image.slice(3, 11), '--json'], {store})), byTag);
  const human = await strata(['image', 'inspect', 'app:1'], {store});
  t.regex(human.stdout, new RegExp(`^image +${app.image}\ntags +app:1\nsize +25 B in 2 layers\n`));
});

test('image tag adds a tag and moves an existing one', async t => {
  const {store, base, app} = await twoImages(t);
  t.deepEqual(jsonOf(t, await strata(['image', 'tag', 'app:1', 'app:latest', '--json'], {store})), {tag: 'app:latest', image: app.image});
  t.is((await strata(['image', 'tag', 'base:1', 'shared'], {store})).code, 0);
  t.is((await strata(['image', 'tag', 'app:1', 'shared:latest'], {store})).code, 0);
  t.deepEqual(jsonOf(t, await strata(['images', '--json'], {store})), [
    {id: app.image, tags: ['app:1', 'app:latest', 'shared:latest'], layers: 2, bytes: 25},
    {id: base.image, tags: ['base:1'], layers: 1, bytes: 10},
  ]);
});

test('image rm of one of several tags only untags; of the last tag removes the image', async t => {
  const {store, base, app} = await twoImages(t);
  await strata(['image', 'tag', 'app:1', 'app:latest'], {store});
  t.deepEqual(jsonOf(t, await strata(['image', 'rm', 'app:latest', '--json'], {store})), [{image: app.image, untagged: ['app:latest'], deleted: false}]);
  t.deepEqual(jsonOf(t, await strata(['image', 'rm', 'app:1', '--json'], {store})), [{image: app.image, untagged: ['app:1'], deleted: true}]);
  t.deepEqual(jsonOf(t, await strata(['images', '--json'], {store})), [{id: base.image, tags: ['base:1'], layers: 1, bytes: 10}]);
  // The layers stay until gc.
  t.is(jsonOf<unknown[]>(t, await strata(['layers', '--json'], {store})).length, 2);
});

test('image rm by id removes the image and every tag', async t => {
  const {store, base} = await twoImages(t);
  await strata(['image', 'tag', 'base:1', 'base:latest'], {store});
  const r = await strata(['image', 'rm', base.image.slice(3, 15)], {store});
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `deleted ${base.image} (was base:1, base:latest)\n`);
  t.deepEqual(jsonOf<{tags: string[]}[]>(t, await strata(['images', '--json'], {store})).map(i => i.tags), [['app:1']]);
});

test('layers lists each layer with the number of images that use it', async t => {
  const {store, base, app} = await twoImages(t);
  const layers = jsonOf<{id: string; entries: number; bytes: number; images: number; created: string; source: string}[]>(t, await strata(['layers', '--json'], {store}));
  t.deepEqual(layers.map(l => ({id: l.id, entries: l.entries, bytes: l.bytes, images: l.images})).sort((a, b) => a.entries - b.entries || a.id.localeCompare(b.id)), [
    {id: base.layer, entries: 2, bytes: 10, images: 2},
    {id: app.layer, entries: 2, bytes: 15, images: 1},
  ].sort((a, b) => a.entries - b.entries || a.id.localeCompare(b.id)));
  t.true(layers.every(l => path.isAbsolute(l.source) && !Number.isNaN(Date.parse(l.created))));
  const table = await strata(['layers'], {store});
  t.regex(table.stdout, /^ID +ENTRIES +SIZE +IMAGES +CREATED +SOURCE\n/);
  t.is(table.stdout.trimEnd().split('\n').length, 3);
});

test('layer inspect shows the record and the top-level entries', async t => {
  const {store, app} = await twoImages(t);
  const report = jsonOf<Record<string, unknown>>(t, await strata(['layer', 'inspect', app.layer.slice(0, 10), '--json'], {store}));
  const record = jsonOf<Record<string, unknown>[]>(t, await strata(['layers', '--json'], {store})).find(l => l.id === app.layer)!;
  const {images: _images, ...fields} = record;
  const root = report.root as {mtime: number}[];
  t.deepEqual(report, {...fields, opaque: false, root: [{name: 'app', kind: 'dir', mode: 0o755, uid: process.getuid!(), gid: process.getgid!(), mtime: root[0]!.mtime}]});
  const human = await strata(['layer', 'inspect', app.layer], {store});
  t.regex(human.stdout, /\nMODE +OWNER +SIZE +NAME\ndrwxr-xr-x +\d+:\d+ +app\/\n$/);
});

test('a tag that looks like hex is read as the tag before any id prefix', async t => {
  const {store, base, app} = await twoImages(t);
  const hexTag = app.image.slice(3, 9); // the start of app's id, used as a tag of base
  t.is((await strata(['image', 'tag', 'base:1', hexTag], {store})).code, 0);
  t.like(jsonOf(t, await strata(['image', 'inspect', hexTag, '--json'], {store})), {id: base.image});
  t.like(jsonOf(t, await strata(['image', 'inspect', app.image.slice(3, 10), '--json'], {store})), {id: app.image});
});
