import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {pipeline} from 'node:stream/promises';
import test from 'ava';
import {getAttributeSync} from '@napi-rs/xattr';
import {exportLayerStream} from '@strata/store';
import {commitContainer} from '../src/commit.js';
import {DIR, type LayerSpec, containerFrom, strataSubject} from './_helpers.js';

const BASE: readonly LayerSpec[] = [{'/etc/motd': 'm', '/etc/keep': 'k', '/d/x': 'x', '/d/y': 'y', '/e/z': 'z', '/f': 'f'}, {'/n': DIR}];

function kindAt(p: string): string {
  const st = fs.lstatSync(p, {throwIfNoEntry: false});
  if (!st) return 'none';
  return st.isCharacterDevice() ? `char ${st.rdev}` : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
}

test('the writable layer is in the kernel overlayfs form: 0/0 devices and trusted.overlay.opaque', async t => {
  const {store, container, view} = await containerFrom(t, BASE);
  const s = strataSubject(view);
  for (const step of [['rm', '/etc/motd'], ['rmr', '/d'], ['mkdir', '/d'], ['rename', '/e', '/e2'], ['rm', '/f']] as const)
    t.deepEqual(await s.run(step), {ok: null});
  const upper = store.upperDir(container.id);
  t.is(kindAt(path.join(upper, 'etc/motd')), 'char 0');
  t.is(kindAt(path.join(upper, 'f')), 'char 0');
  t.is(kindAt(path.join(upper, 'e')), 'char 0');
  t.is(getAttributeSync(path.join(upper, 'd'), 'trusted.overlay.opaque')?.toString(), 'y');
  t.is(getAttributeSync(path.join(upper, 'e2'), 'trusted.overlay.opaque')?.toString(), 'y', 'a renamed lower directory is opaque');
  t.is(spawnSync('find', [upper, '-name', '.wh.*'], {encoding: 'utf8'}).stdout, '');
  // Whiteouts share one inode, as the kernel's do.
  t.is(fs.lstatSync(path.join(upper, 'f')).ino, fs.lstatSync(path.join(store.dir, 'whiteout')).ino);
  // A name taken again replaces its whiteout.
  t.deepEqual(await s.run(['write', '/f', 'new']), {ok: null});
  t.is(kindAt(path.join(upper, 'f')), 'file');
});

test('commit reads whiteouts and opaque directories from the kernel form, and exports them as OCI markers', async t => {
  const {store, container, view} = await containerFrom(t, BASE);
  const s = strataSubject(view);
  for (const step of [['rm', '/etc/motd'], ['rmr', '/d'], ['mkdir', '/d'], ['write', '/d/new', 'n']] as const) await s.run(step);
  const {layer} = await commitContainer(store, container);
  const file = path.join(path.dirname(store.dir), 'layer.tar');
  await pipeline(exportLayerStream(store, layer.id), fs.createWriteStream(file));
  const names = spawnSync('tar', ['-tf', file], {encoding: 'utf8'}).stdout.split('\n');
  t.true(names.includes('etc/.wh.motd'), names.join(' '));
  t.true(names.includes('d/.wh..wh..opq'), names.join(' '));
  t.true(names.includes('d/new'));
});

test('commit refuses a file named .wh.* that a process made in the writable layer', async t => {
  const {store, container} = await containerFrom(t, BASE);
  const upper = store.upperDir(container.id);
  fs.mkdirSync(path.join(upper, 'etc'));
  fs.writeFileSync(path.join(upper, 'etc', '.wh.keep'), 'made by a process');
  const err = await t.throwsAsync(commitContainer(store, container));
  t.is((err as {code?: string}).code, 'WHITEOUT_NAME');
  t.regex(err!.message, /\/etc\/\.wh\.keep/);
  t.deepEqual((await store.listImages()).length, 1, 'no image was made');
});

test('a .wh. file in the upper is an ordinary file in the view, as the kernel shows it', async t => {
  const {store, container, view} = await containerFrom(t, BASE);
  fs.writeFileSync(path.join(store.upperDir(container.id), '.wh.f'), 'plain');
  const s = strataSubject(view);
  t.deepEqual(await s.run(['read', '/.wh.f']), {ok: 'plain'});
  t.deepEqual(await s.run(['read', '/f']), {ok: 'f'});
});

test('a device node made in the container is committed as a device entry', async t => {
  const {store, container} = await containerFrom(t, BASE);
  const upper = store.upperDir(container.id);
  t.is(spawnSync('mknod', [path.join(upper, 'null'), 'c', '1', '3']).status, 0);
  const {layer} = await commitContainer(store, container);
  const tree = await store.getTree(layer.id);
  t.like(tree.entries.find(e => e.name === 'null'), {kind: 'char', devmajor: 1, devminor: 3});
});
