import {randomBytes} from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'ava';
import {type RunResult, strata, tempDir} from './_cli.js';
import {jsonOf, storeTemplate} from './_fixtures.js';

// A damaged object file is never served, copied up, checked out or exported: every command
// that reads it fails with exit 3 and leaves no output file, and no sha256 is ever made
// over its bytes. After `verify --repair` and a re-import of the same content, verify passes.

const BIG = randomBytes(3 * 1024 * 1024 + 5); // streamed in several chunks; an object file
/** The store's one object file: BIG is its only blob over the inline threshold. */
async function objectFile(store: string): Promise<string> {
  const fan = path.join(store, 'objects', 'b3');
  const [sub] = await fs.readdir(fan);
  const [name] = await fs.readdir(path.join(fan, sub!));
  return path.join(fan, sub!, name!);
}

const template = storeTemplate(async (store, scratch) => {
  const src = path.join(scratch, 'src');
  await fs.mkdir(src);
  await fs.writeFile(path.join(src, 'big'), BIG);
  await fs.writeFile(path.join(src, 'small'), 'small\n');
  const imported = await strata(['import', src, '--tag', 'img:1', '--json'], {store});
  const layer = (JSON.parse(imported.stdout) as {layer: string}).layer;
  const created = await strata(['create', 'img:1', '--name', 'web'], {store});
  if (imported.code !== 0 || created.code !== 0) throw new Error(imported.stderr + created.stderr);
  return {src, layer};
});

/** The template store with one byte of the big file's object file flipped (or the file cut short). */
async function damaged(t: import('ava').ExecutionContext, how: 'flip' | 'truncate') {
  const {store, made} = await template.copy(t);
  const file = await objectFile(store);
  await fs.chmod(file, 0o644);
  if (how === 'flip') {
    const bytes = await fs.readFile(file);
    bytes[BIG.length - 100]! ^= 1; // near the end: everything before it reads fine
    await fs.writeFile(file, bytes);
  } else {
    await fs.truncate(file, BIG.length - 1);
  }
  return {store, ...made};
}

const refused = (t: import('ava').ExecutionContext, r: RunResult) => {
  t.is(r.code, 3, r.stderr);
  t.regex(r.stderr, /^strata: blob b3:[0-9a-f]{64} is damaged: [^\n]+\n$/);
};

/** Repair, import the same content again, and the store verifies. */
async function healed(t: import('ava').ExecutionContext, store: string, src: string) {
  t.is((await strata(['verify'], {store})).code, 3);
  await strata(['verify', '--repair'], {store});
  t.is((await strata(['import', src], {store})).code, 0);
  const v = await strata(['verify'], {store});
  t.is(v.code, 0, v.stdout);
  const cat = await strata(['cat', 'img:1', '/big'], {store});
  t.is(cat.code, 0);
}

for (const how of ['flip', 'truncate'] as const) {
  test(`cat of a damaged (${how}) object file exits 3 and never writes the whole file`, async t => {
    const {store, src} = await damaged(t, how);
    const r = await strata(['cat', 'img:1', '/big'], {store});
    refused(t, r);
    t.true(Buffer.byteLength(r.stdout, 'latin1') < BIG.length);
    await healed(t, store, src);
  });
}

test('checkout of an image with a damaged object file exits 3 and leaves no directory', async t => {
  const {store, src} = await damaged(t, 'flip');
  const out = path.join(await tempDir(t), 'new', 'out');
  refused(t, await strata(['checkout', 'img:1', out], {store}));
  await t.throwsAsync(fs.access(path.dirname(out)), {code: 'ENOENT'});
  await healed(t, store, src);
});

test('image export (oci and docker) of a damaged layer exits 3 and writes nothing', async t => {
  const {store, src} = await damaged(t, 'flip');
  const dir = await tempDir(t);
  refused(t, await strata(['image', 'export', 'img:1', path.join(dir, 'oci')], {store}));
  refused(t, await strata(['image', 'export', 'img:1', path.join(dir, 'img.tar'), '--format', 'docker'], {store}));
  t.deepEqual(await fs.readdir(dir), []);
  await healed(t, store, src);
});

test('layer export of a damaged layer exits 3, to a file (removed) and to stdout', async t => {
  const {store, src, layer} = await damaged(t, 'flip');
  const dir = await tempDir(t);
  refused(t, await strata(['layer', 'export', layer, path.join(dir, 'layer.tar'), '--compress', 'none'], {store}));
  t.deepEqual(await fs.readdir(dir), []);
  const piped = await strata(['layer', 'export', layer, '-', '--compress', 'none'], {store});
  refused(t, piped);
  t.true(Buffer.byteLength(piped.stdout, 'latin1') < BIG.length);
  await healed(t, store, src);
});

test('copying a damaged file up into a container exits 3 and leaves the container unchanged', async t => {
  const {store, src} = await damaged(t, 'flip');
  refused(t, await strata(['fs', 'web', 'chmod', '600', '/big'], {store}));
  t.deepEqual(jsonOf(t, await strata(['diff', 'web', '--json'], {store})), []);
  // A commit therefore cannot launder the damage into a fresh blob.
  const committed = jsonOf<{newBytes: number}>(t, await strata(['commit', 'web', '--json'], {store}));
  t.is(committed.newBytes, 0);
  await healed(t, store, src);
});

test('commit of a container whose image record is missing exits 3 in one line, not a stack', async t => {
  const {store} = await template.copy(t);
  // Damage behind strata's back: the image record goes from the index (neither image rm
  // nor Store.deleteImage removes an image a container uses).
  const lib = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'packages', 'store', 'dist', 'src', 'index.js');
  type Handle = {resolveImage(r: string): Promise<{id: string}>; index: {commit(ops: {type: 'del'; key: string}[]): Promise<void>}; close(): Promise<void>};
  const {Store} = await import(lib) as {Store: {open(dir: string): Promise<Handle>}};
  const s = await Store.open(store);
  await s.index.commit([{type: 'del', key: `i:${(await s.resolveImage('img:1')).id}`}]);
  await s.close();
  for (const args of [['commit', 'web'], ['fs', 'web', 'ls', '/']]) {
    const r = await strata(args, {store});
    t.is(r.code, 3, r.stderr);
    t.regex(r.stderr, /^strata: container web is based on image b3:[0-9a-f]{64}, which is missing[^\n]*\n$/);
  }
  t.is((await strata(['verify'], {store})).code, 3);
  await strata(['rm', 'web'], {store});
  await strata(['verify', '--repair'], {store}); // the tag img:1 names the lost image: repair removes it
  const v = await strata(['verify'], {store});
  t.is(v.code, 0, v.stdout + v.stderr);
});
