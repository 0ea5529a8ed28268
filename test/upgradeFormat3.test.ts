import {execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'ava';
import {strata, tempDir} from './_cli.js';

// A store written by strata with store format 2 (test/fixtures/make-store-format-2.sh made
// it, and recorded what that strata reported: its base has /tmp 1777 and /root 0700, and
// a GNU tar layer without entries for them on top) opens with this strata, is upgraded to
// format 3, verifies, and shows, exports and keeps everything as it did.

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

interface Reported {
  images: unknown;
  diffIds: Record<string, string>;
  ls: Record<string, unknown>;
  cat: Record<string, string>;
  ps: {name: string; image: string}[];
  pins: unknown;
}

async function formatTwoStore(t: Parameters<typeof tempDir>[0]): Promise<{store: string; before: Reported}> {
  const dir = await tempDir(t);
  execFileSync('tar', ['-C', dir, '-xzf', path.join(FIXTURES, 'store-format-2.tar.gz')]);
  const before = JSON.parse(await fs.readFile(path.join(FIXTURES, 'store-format-2.json'), 'utf8')) as Reported;
  return {store: path.join(dir, 'store'), before};
}

const json = async (store: string, ...args: string[]) => {
  const r = await strata([...args, '--json'], {store});
  if (r.code !== 0) throw new Error(`strata ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
};

test('a format-2 store is upgraded on open and verifies, with every id, listing and file as before', async t => {
  const {store, before} = await formatTwoStore(t);
  t.deepEqual(JSON.parse(await fs.readFile(path.join(store, 'strata.json'), 'utf8')), {format: 2});
  t.deepEqual(await json(store, 'images'), before.images);
  t.deepEqual(JSON.parse(await fs.readFile(path.join(store, 'strata.json'), 'utf8')), {format: 3});
  const verify = await strata(['verify'], {store});
  t.is(verify.code, 0, verify.stdout + verify.stderr);
  for (const [key, want] of Object.entries(before.ls)) {
    const [ref, p] = key.split(' ') as [string, string];
    t.deepEqual(await json(store, 'ls', ref, p), want, key);
  }
  for (const [key, want] of Object.entries(before.cat)) {
    const [ref, p] = key.split(' ') as [string, string];
    const r = await strata(['cat', ref, p], {store});
    t.is(createHash('sha256').update(r.stdout).digest('hex'), want, key);
  }
  t.deepEqual((await json(store, 'ps')).map((c: {name: string; image: string}) => ({name: c.name, image: c.image})).sort((a: {name: string}, b: {name: string}) => a.name.localeCompare(b.name)), before.ps);
  t.deepEqual(await json(store, 'pin', 'ls'), before.pins);
  // Nothing is garbage that was not garbage before.
  t.is((await json(store, 'gc', '--dry-run')).objects, 0);
});

test('a layer stored in format 2 exports the same bytes after the upgrade', async t => {
  const {store, before} = await formatTwoStore(t);
  for (const [id, diffId] of Object.entries(before.diffIds)) {
    const out = path.join(path.dirname(store), `${id.slice(3, 15)}.tar`);
    const r = await strata(['layer', 'export', id, out, '--compress', 'none'], {store});
    t.is(r.code, 0, r.stderr);
    t.is(`sha256:${createHash('sha256').update(await fs.readFile(out)).digest('hex')}`, diffId, id);
  }
});

test('an upgraded store takes new work: a container of a format-2 image commits, and gc keeps what is tagged', async t => {
  const {store} = await formatTwoStore(t);
  t.is((await strata(['fs', 'web', 'cat', '/etc/hostname'], {store})).stdout, 'changed\n');
  t.is((await strata(['create', 'web:1', '--name', 'next'], {store})).code, 0);
  t.is((await strata(['fs', 'next', 'write', '/tmp/new'], {store, input: 'new\n'})).code, 0);
  t.is((await strata(['commit', 'next', '--tag', 'next:1'], {store})).code, 0);
  t.is((await strata(['cat', 'next:1', '/tmp/new'], {store})).stdout, 'new\n');
  t.is((await strata(['cat', 'next:1', '/etc/hostname'], {store})).stdout, 'changed\n');
  t.is((await strata(['gc'], {store})).code, 0);
  const verify = await strata(['verify'], {store});
  t.is(verify.code, 0, verify.stdout + verify.stderr);
});

test('a store of a newer format than this strata writes is refused, not upgraded', async t => {
  const {store} = await formatTwoStore(t);
  await fs.writeFile(path.join(store, 'strata.json'), '{"format": 99}\n');
  const r = await strata(['images'], {store});
  t.is(r.code, 1);
  t.regex(r.stderr, /format 99/);
  t.deepEqual(JSON.parse(await fs.readFile(path.join(store, 'strata.json'), 'utf8')), {format: 99});
});
