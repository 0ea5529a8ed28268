import test from 'ava';
import {type Store, parseTag, removeImages} from '@strata/store';
import {commitContainer} from '../src/commit.js';
import {stackImage} from '../src/stackImage.js';
import {createContainer, openContainerView, openImageView} from '../src/containers.js';
import {diffViews} from '../src/diff.js';
import type {UnionView} from '../src/UnionView.js';
import {DIR, type LayerSpec, OPAQUE, WHITEOUT, containerFrom, strataSubject, vp} from './_helpers.js';

const BASE: readonly LayerSpec[] = [
  {'/etc/conf': 'v1', '/etc/old': 'old', '/bin/sh': {file: 'sh', mode: 0o755}, '/var/log/a': 'a', '/var/log/b': 'b', '/home/u/.rc': 'rc', '/h1': 'hard', '/h2': {link: '/h1'}},
  {'/etc/conf': 'v2', '/var/log/b': WHITEOUT, '/home': OPAQUE, '/home/v/.rc': 'rc2', '/opt': DIR},
];

/** Every entry of a view with its metadata, mtimes included. */
async function snapshot(view: UnionView): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const walk = async (dir: string) => {
    for (const e of await view.readdir(vp(dir))) {
      const p = dir === '/' ? `/${e.name}` : `${dir}/${e.name}`;
      out[p] = {kind: e.kind, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, size: e.size, target: e.target,
        content: e.kind === 'file' ? (await view.readFile(vp(p))).toString('utf8') : undefined};
      if (e.kind === 'dir') await walk(p);
    }
  };
  await walk('/');
  const root = await view.lstat(vp('/'));
  out['/'] = {mode: root.mode, uid: root.uid, gid: root.gid};
  return out;
}

/** A change set that leaves whiteouts, opaque directories, copy-ups and links in the upper. */
async function change(view: UnionView): Promise<void> {
  const s = strataSubject(view);
  for (const step of [
    ['write', '/etc/conf', 'v3'], ['rm', '/etc/old'], ['chmod', '/bin/sh', 0o700], ['chown', '/bin/sh', 10, 20],
    ['rmr', '/var/log'], ['mkdir', '/var/log'], ['write', '/var/log/new', 'n'], ['rename', '/home/v', '/home/w'],
    ['symlink', '/etc/conf', '/opt/conf'], ['link', '/h1', '/opt/h3'], ['mkdir', '/new'], ['write', '/new/f', 'f'],
  ] as const) {
    const r = await s.run(step);
    if ('err' in r) throw new Error(`${JSON.stringify(step)} failed: ${r.err}`);
  }
}

async function committedView(store: Store, image: string): Promise<UnionView> {
  return openImageView(store, image as never);
}

test('the committed image shows exactly what the container showed', async t => {
  const {store, container, view} = await containerFrom(t, BASE);
  await change(view);
  const before = await snapshot(view);
  const result = await commitContainer(store, container);
  t.deepEqual(await snapshot(await committedView(store, result.image)), before);
  // A container of the new image starts where the old one left off, and diffs empty against it.
  const next = await openContainerView(store, await createContainer(store, {image: result.image}));
  t.deepEqual(await snapshot(next), before);
  t.deepEqual(await diffViews(view, next), []);
});

test('committing the same changes twice gives the same layer', async t => {
  const {store, container, view} = await containerFrom(t, BASE);
  await change(view);
  const first = await commitContainer(store, container);
  const second = await commitContainer(store, container);
  t.is(second.layer.id, first.layer.id);
  t.is(second.image, first.image);
  t.is(second.newObjects, 0);
});

test('an unchanged container commits an empty layer and an image that shows the same', async t => {
  const {store, container, view, image} = await containerFrom(t, BASE);
  const result = await commitContainer(store, container);
  t.is(result.layer.entries, 0);
  t.deepEqual(await diffViews(await openImageView(store, image), await committedView(store, result.image)), []);
  t.deepEqual(await snapshot(await committedView(store, result.image)), await snapshot(view));
});

test('the diff of a container lists its changes with their parents as C', async t => {
  const {store, image, view} = await containerFrom(t, BASE);
  await change(view);
  const changes = await diffViews(await openImageView(store, image), view);
  t.deepEqual(changes.map(c => `${c.kind} ${c.path}`), [
    'C /bin', 'C /bin/sh', 'C /etc', 'C /etc/conf', 'D /etc/old', 'C /home', 'D /home/v', 'A /home/w', 'A /home/w/.rc',
    'A /new', 'A /new/f', 'C /opt', 'A /opt/conf', 'A /opt/h3', 'C /var', 'C /var/log', 'D /var/log/a', 'A /var/log/new',
  ]);
});

test('a container\'s changes reach neither its image nor another container of it', async t => {
  const {store, image, view} = await containerFrom(t, BASE);
  const other = await openContainerView(store, await createContainer(store, {image}));
  const before = await snapshot(other);
  await change(view);
  t.deepEqual(await snapshot(other), before);
  t.deepEqual(await snapshot(await openImageView(store, image)), before);
  t.notDeepEqual(await snapshot(view), before);
});

test('an image a container uses cannot be deleted through the store, so the container still commits', async t => {
  const {store, image, container} = await containerFrom(t, BASE);
  await t.throwsAsync(store.deleteImage(image), {code: 'IN_USE'});
  await t.throwsAsync(removeImages(store, [image]), {code: 'IN_USE'});
  await (await openContainerView(store, container)).writeFile(vp('/etc/new'), Buffer.from('n'));
  const r = await commitContainer(store, container);
  t.deepEqual((await store.getImage(r.image))?.layers.length, 3);
});

test('stackImage puts a layer on an image: its layers, config and platform, one more history entry, flattened once', async t => {
  const {store, image, layers} = await containerFrom(t, BASE);
  const base = (await store.getImage(image))!;
  const platform = {architecture: 'arm64', os: 'linux', variant: 'v8'};
  const {id: onArm} = await stackImage(store, layers[1]!, {base: {...base, platform, config: {env: ['A=1']}}, createdBy: 'strata import', comment: 'x'});
  const stacked = (await store.getImage(onArm))!;
  t.deepEqual(stacked, {layers: [...layers, layers[1]!], config: {env: ['A=1'], history: [{createdBy: 'strata import', comment: 'x'}]}, platform});
  t.truthy(await store.getFlat(stacked.layers), 'the stack is flattened when it is stored');
  // The same stacking gives the same id (no timestamp); no base: one layer, the given platform.
  t.is((await stackImage(store, layers[1]!, {base: {...base, platform, config: {env: ['A=1']}}, createdBy: 'strata import', comment: 'x'})).id, onArm);
  const alone = await stackImage(store, layers[0]!, {platform: {architecture: 'amd64', os: 'linux'}, createdBy: 'strata import', tag: parseTag('alone:1')});
  t.deepEqual(alone.image, {layers: [layers[0]!], config: {history: [{createdBy: 'strata import'}]}, platform: {architecture: 'amd64', os: 'linux'}});
  t.is(await store.getTag(parseTag('alone:1')), alone.id);
});
