import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {strata, tempDir, tempStore} from './_cli.js';
import {jsonOf, writeTree} from './_fixtures.js';
import {peer} from './_peers.js';

// Image references as skopeo and podman write them, in image import/export and in tags.

async function storeWith(t: ExecutionContext, ...images: string[]): Promise<string> {
  const store = await tempStore(t);
  for (const [i, tag] of images.entries()) {
    const dir = path.join(await tempDir(t), 'tree');
    await writeTree(dir, {[`etc/image-${i}`]: tag, 'etc/shared': 'same in every image'});
    const r = await strata(['import', dir, '--tag', tag], {store});
    t.is(r.code, 0, r.stderr);
  }
  return store;
}

const idOf = async (t: ExecutionContext, store: string, image: string) => jsonOf<{id: string}>(t, await strata(['image', 'inspect', image, '--json'], {store})).id;

test('oci:DIR:REF imports only the image named REF of a layout that holds several', async t => {
  const store = await storeWith(t, 'one:1', 'two:1');
  const dir = await tempDir(t);
  for (const name of ['one', 'two']) {
    const r = await strata(['image', 'export', `${name}:1`, `oci:${path.join(dir, name)}:${name}`], {store});
    t.is(r.code, 0, r.stderr);
    peer(t, 'skopeo', ['copy', `oci:${path.join(dir, name)}:${name}`, `oci:${path.join(dir, 'multi')}:${name}`]);
  }
  const other = await tempStore(t);
  const r = jsonOf<{images: {tags: string[]}[]}>(t, await strata(['image', 'import', `oci:${path.join(dir, 'multi')}:two`, '--json'], {store: other}));
  t.deepEqual(r.images.map(i => i.tags), [['multi:two']]);
  t.is(await idOf(t, other, 'multi:two'), await idOf(t, store, 'two:1'));
  const none = await strata(['image', 'import', `oci:${path.join(dir, 'multi')}:three`], {store: other});
  t.is(none.code, 1);
  t.regex(none.stderr, /no image named "three" \(it has "one", "two"\)/);
});

test('oci-archive: and docker-archive: round trips keep the image and its registry name', async t => {
  const store = await storeWith(t, 'app:1');
  const dir = await tempDir(t);
  const archive = path.join(dir, 'app.tar');
  const out = await strata(['image', 'export', 'app:1', `oci-archive:${archive}:localhost:5000/team/app:1`], {store});
  t.is(out.code, 0, out.stderr);
  peer(t, 'skopeo', ['inspect', `oci-archive:${archive}`]);
  const again = await strata(['image', 'export', 'app:1', `oci-archive:${path.join(dir, 'again.tar')}:localhost:5000/team/app:1`], {store});
  t.is(again.code, 0, again.stderr);
  t.is(peer(t, 'sha256sum', [archive]).split(' ')[0], peer(t, 'sha256sum', [path.join(dir, 'again.tar')]).split(' ')[0], 'the same image gives the same archive');
  const other = await tempStore(t);
  const r = jsonOf<{format: string; images: {tags: string[]}[]}>(t, await strata(['image', 'import', `oci-archive:${archive}`, '--json'], {store: other}));
  t.is(r.format, 'oci-archive');
  t.deepEqual(r.images.map(i => i.tags), [['localhost:5000/team/app:1']]);
  t.is(await idOf(t, other, 'localhost:5000/team/app:1'), await idOf(t, store, 'app:1'));

  // A docker archive whose RepoTags carry a registry host (as podman save writes) imports whole.
  const docker = path.join(dir, 'docker.tar');
  t.is((await strata(['image', 'export', 'app:1', `docker-archive:${docker}:quay.io/org/app:v1`], {store})).code, 0);
  const third = await tempStore(t);
  const d = jsonOf<{images: {tags: string[]}[]}>(t, await strata(['image', 'import', `docker-archive:${docker}`, '--json'], {store: third}));
  t.deepEqual(d.images.map(i => i.tags), [['quay.io/org/app:v1']]);
});

test('tags take registry hosts, and docker.io/library names are one tag however they are spelt', async t => {
  const store = await storeWith(t, 'app:1');
  for (const tag of ['localhost:5000/team/app:1', 'docker.io/library/alpine:3', 'quay.io/org/app'])
    t.is((await strata(['image', 'tag', 'app:1', tag], {store})).code, 0, tag);
  const tags = jsonOf<{tags: string[]}[]>(t, await strata(['images', '--json'], {store})).flatMap(i => i.tags).sort();
  t.deepEqual(tags, ['alpine:3', 'app:1', 'localhost:5000/team/app:1', 'quay.io/org/app:latest']);
  t.is(await idOf(t, store, 'docker.io/alpine:3'), await idOf(t, store, 'app:1'));
  t.is(await idOf(t, store, 'index.docker.io/library/alpine:3'), await idOf(t, store, 'app:1'));
  const bad = await strata(['image', 'tag', 'app:1', 'Quay.io/Org/App'], {store});
  t.is(bad.code, 2);
  t.is(bad.stderr.split('\n').length, 2, bad.stderr);
});
