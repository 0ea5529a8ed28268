import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {Readable} from 'node:stream';
import {gzipSync, gunzipSync} from 'node:zlib';
import test, {type ExecutionContext} from 'ava';
import {type Digest, type Store, type TreeEntry, exportLayerStream, importOciLayout} from '../src/index.js';
import {importTarStream} from '../src/import/importTar.js';
import {openTempStore, tempDir} from './_helpers.js';
import {type TarEntry, rawHeader, sha256, tarBytes, writeLayout} from './_oci.js';

// Every hostile layer goes through the whole image import (an OCI layout with right
// digests), so the tar is what is tested. Each test also checks that nothing was written
// outside the store, that the store holds no device or fifo, and that a failed import
// left no layer, image, tag or temporary file.

async function refs(store: Store) {
  return {layers: (await store.listLayers()).map(l => l.id), images: (await store.listImages()).map(i => i.id), tags: await store.listTags()};
}

/** Every path under `dir` that is not a regular file or a directory. */
async function specialFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, {recursive: true, withFileTypes: true})) if (!e.isFile() && !e.isDirectory()) out.push(path.join(e.parentPath, e.name));
  return out;
}

interface Outcome {
  readonly store: Store;
  readonly error?: {code?: string; name?: string};
  /** The imported layer's root tree entries, flattened to path -> entry. */
  readonly layer?: Map<string, TreeEntry>;
}

/** Imports one layer tar (as it is, or as a given blob) through an OCI layout; checks the invariants. */
async function importHostile(t: ExecutionContext, blob: Buffer, options: {gzip?: boolean; diffId?: string} = {}): Promise<Outcome> {
  const store = await openTempStore(t);
  const work = await tempDir(t);
  const outside = path.join(work, 'outside');
  await fs.mkdir(outside);
  const dir = path.join(work, 'img');
  await writeLayout(dir, [blob], {...(options.diffId ? {diffIds: [options.diffId]} : {})});
  const before = await refs(store);
  let error: Outcome['error'];
  let layer: Map<string, TreeEntry> | undefined;
  try {
    const [img] = await importOciLayout(store, dir);
    layer = await flatten(store, img!.layers[0]!.id);
  } catch (err) {
    error = err as Outcome['error'];
    t.is(error?.name, 'StoreError', `a coded error, not ${String(err)}`);
    t.deepEqual(await refs(store), before, 'a failed import leaves no layer, image or tag');
  }
  t.deepEqual(await fs.readdir(outside), [], 'nothing written outside the store');
  t.deepEqual(await fs.readdir(path.join(store.dir, 'tmp')), [], 'no temporary file left');
  t.deepEqual(await specialFiles(store.dir), [], 'no device, fifo or symlink in the store');
  return {store, ...(error ? {error} : {}), ...(layer ? {layer} : {})};
}

async function flatten(store: Store, root: Digest, prefix = ''): Promise<Map<string, TreeEntry>> {
  const out = new Map<string, TreeEntry>();
  for (const e of (await store.getTree(root)).entries) {
    out.set(prefix + e.name, e);
    if (e.kind === 'dir') for (const [k, v] of await flatten(store, e.tree, `${prefix}${e.name}/`)) out.set(k, v);
  }
  return out;
}

const refused = test.macro(async (t, entries: TarEntry[], code: string) => {
  const r = await importHostile(t, await tarBytes(entries));
  t.is(r.error?.code, code);
});

test('an absolute path is refused', refused, [{name: '/etc/evil', content: 'x'}], 'UNSAFE_PATH');
test('a path that climbs out with .. is refused', refused, [{name: '../evil', content: 'x'}], 'UNSAFE_PATH');
test('a path that climbs out with .. in the middle is refused', refused, [{name: 'a/../../evil', content: 'x'}], 'UNSAFE_PATH');
test('a hardlink to a path outside the layer is refused', refused, [{name: 'h', type: 'link', linkname: '../../etc/passwd'}], 'UNSAFE_PATH');
test('a hardlink to an absolute host path is refused', refused, [{name: 'h', type: 'link', linkname: '/etc/passwd'}], 'UNSAFE_PATH');
test('a hardlink to a later entry is refused', refused, [{name: 'h', type: 'link', linkname: 'later'}, {name: 'later', content: 'x'}], 'UNSAFE_PATH');
test('a hardlink to a directory is refused', refused, [{name: 'd/', type: 'directory'}, {name: 'h', type: 'link', linkname: 'd'}], 'UNSAFE_PATH');

test('a symlink that points out, then written through, is replaced by a directory: nothing is followed', async t => {
  const work = await tempDir(t);
  const r = await importHostile(t, await tarBytes([
    {name: 'out', type: 'symlink', linkname: work},
    {name: 'out/outside/evil', content: 'x'},
    {name: 'up', type: 'symlink', linkname: '../../../..'},
    {name: 'up/evil', content: 'y'},
  ]));
  t.is(r.error, undefined);
  t.is(r.layer?.get('out')?.kind, 'dir');
  t.is(r.layer?.get('out/outside/evil')?.kind, 'file');
  t.is(r.layer?.get('up')?.kind, 'dir');
  t.deepEqual(await fs.readdir(work), [], 'the symlink target on the host is untouched');
});

test('a symlink that points out is kept as a symlink, never resolved', async t => {
  const r = await importHostile(t, await tarBytes([{name: 'etc', type: 'symlink', linkname: '/etc'}, {name: 'up', type: 'symlink', linkname: '../../..'}]));
  t.like(r.layer?.get('etc'), {kind: 'symlink', target: '/etc'});
  t.like(r.layer?.get('up'), {kind: 'symlink', target: '../../..'});
});

test('device nodes and fifos are kept as entries and never created on the host', async t => {
  const r = await importHostile(t, await tarBytes([
    {name: 'dev/', type: 'directory'},
    {name: 'dev/mem', type: 'character-device', devmajor: 1, devminor: 1, mode: 0o640},
    {name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0},
    {name: 'dev/p', type: 'fifo'},
  ]));
  t.like(r.layer?.get('dev/mem'), {kind: 'char', devmajor: 1, devminor: 1, mode: 0o640});
  t.like(r.layer?.get('dev/sda'), {kind: 'block', devmajor: 8, devminor: 0});
  t.like(r.layer?.get('dev/p'), {kind: 'fifo'});
});

test('a duplicate entry replaces the earlier one (tar\'s rule), whatever its kind', async t => {
  const r = await importHostile(t, await tarBytes([
    {name: 'f', content: 'first'}, {name: 'f', content: 'second'},
    {name: 'd/', type: 'directory'}, {name: 'd/x', content: 'x'}, {name: 'd', content: 'now a file'},
  ]));
  t.like(r.layer?.get('f'), {kind: 'file', size: 6});
  t.like(r.layer?.get('d'), {kind: 'file', size: 10});
  t.false(r.layer?.has('d/x'));
});

test('a whiteout of a path the same layer adds is dropped; the entry stays', async t => {
  const r = await importHostile(t, await tarBytes([{name: 'f', content: 'x'}, {name: '.wh.f', content: ''}, {name: '.wh.g', content: ''}, {name: 'g', content: 'y'}]));
  t.like(r.layer?.get('f'), {kind: 'file'});
  t.like(r.layer?.get('g'), {kind: 'file'});
  t.is([...r.layer!.values()].filter(e => e.kind === 'whiteout').length, 0);
});

test('a whiteout name that climbs out is refused', refused, [{name: 'a/.wh...', content: ''}], 'UNSAFE_PATH');

test('a huge declared size with little data is a truncated archive', async t => {
  const blob = Buffer.concat([rawHeader('big', 8 * 1024 ** 3), Buffer.alloc(4096, 1)]);
  const r = await importHostile(t, blob);
  t.is(r.error?.code, 'BAD_ARCHIVE');
});

test('a huge declared size above the in-memory bound streams to a temporary file that is removed', async t => {
  const blob = Buffer.concat([rawHeader('big', 64 * 1024 ** 2), Buffer.alloc(1024 * 1024, 1)]);
  const r = await importHostile(t, blob);
  t.is(r.error?.code, 'BAD_ARCHIVE');
});

test('a truncated plain tar is refused', async t => {
  const full = await tarBytes([{name: 'a', content: 'x'.repeat(5000)}, {name: 'b', content: 'y'}]);
  t.is((await importHostile(t, full.subarray(0, 3000))).error?.code, 'BAD_ARCHIVE');
});

test('a truncated gzip layer is refused', async t => {
  const gz = gzipSync(await tarBytes([{name: 'a', content: Buffer.alloc(100_000, 3)}]));
  t.is((await importHostile(t, gz.subarray(0, gz.length >> 1), {diffId: sha256(Buffer.from('unknowable'))})).error?.code, 'BAD_ARCHIVE');
});

test('a gzip layer with a corrupt body is refused', async t => {
  const gz = gzipSync(await tarBytes([{name: 'a', content: Buffer.alloc(100_000, 3)}]));
  gz.writeUInt8(gz.readUInt8(40) ^ 0xff, 40);
  const code = (await importHostile(t, gz, {diffId: sha256(Buffer.from('unknowable'))})).error?.code;
  t.true(code === 'BAD_ARCHIVE' || code === 'DIGEST_MISMATCH', String(code));
});

// ---- fuzz ----------------------------------------------------------------------------

/** mulberry32: a small seeded PRNG, so a failure can be replayed from its case number. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const SAFE_NAMES = ['a', 'b', 'a/b', 'a/b/c', 'c', 'é/ü', './a', 'a//b', 'dev/null', 'a/.wh.b', '.wh.a', 'a/.wh..wh..opq'];
const NAMES = ['a', 'b', 'a/b', 'a/b/c', 'c', '../x', '/abs', 'a/../../y', '.wh.a', 'a/.wh.b', 'a/.wh..wh..opq', '.wh..wh..opq', '.', './a', 'a//b', 'é/ü', 'x'.repeat(120), `${'d/'.repeat(60)}f`, '.wh.', 'a/.wh...', 'dev/null'];
const TYPES = ['file', 'file', 'file', 'directory', 'symlink', 'link', 'character-device', 'block-device', 'fifo'] as const;

function randomEntries(rand: () => number): TarEntry[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const n = 1 + Math.floor(rand() * 8);
  return Array.from({length: n}, () => {
    const type = pick(TYPES);
    return {
      name: pick(rand() < 0.85 ? SAFE_NAMES : NAMES), type, mode: Math.floor(rand() * 0o10000), uid: Math.floor(rand() * 70000), gid: Math.floor(rand() * 70000), mtime: Math.floor(rand() * 2e9),
      ...(type === 'file' ? {content: Buffer.alloc(Math.floor(rand() * 3000), Math.floor(rand() * 256))} : {}),
      ...(type === 'symlink' || type === 'link' ? {linkname: pick(rand() < 0.85 ? SAFE_NAMES : NAMES)} : {}),
      ...(type.endsWith('device') ? {devmajor: Math.floor(rand() * 300), devminor: Math.floor(rand() * 300)} : {}),
      ...(rand() < 0.1 ? {pax: {'SCHILY.xattr.user.k': 'v'.repeat(Math.floor(rand() * 50))}} : {}),
    };
  });
}

function mutate(bytes: Buffer, rand: () => number): Buffer {
  const b = Buffer.from(bytes);
  switch (Math.floor(rand() * 4)) {
    case 0: { // flip bytes
      for (let i = 0, n = 1 + Math.floor(rand() * 6); i < n && b.length > 0; i++) {
        const at = Math.floor(rand() * b.length);
        b.writeUInt8(b.readUInt8(at) ^ (1 + Math.floor(rand() * 255)), at);
      }
      return b;
    }
    case 1: return b.subarray(0, Math.floor(rand() * b.length)); // truncate
    case 2: { // overwrite a header's size field with a random octal number
      const at = 512 * Math.floor(rand() * Math.max(1, b.length / 512)) + 124;
      if (at + 12 <= b.length) b.write(Math.floor(rand() * 2 ** 36).toString(8).padStart(11, '0'), at);
      return b;
    }
    default: { // splice in random bytes
      const at = Math.floor(rand() * b.length);
      return Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({length: 1 + Math.floor(rand() * 600)}, () => Math.floor(rand() * 256))), b.subarray(at)]);
    }
  }
}

const CODES = new Set(['UNSAFE_PATH', 'BAD_ARCHIVE', 'UNSUPPORTED_ENTRY', 'DIGEST_MISMATCH', 'BAD_MANIFEST']);

test('fuzz: random and mutated layer tars import safely or fail with a code; what imports exports and re-imports as the same layer', async t => {
  // The budget keeps a slow machine's suite short; what it must still run is MIN_CASES.
  const SEED = 0x5742a7a, CASES = 150, MIN_CASES = 60, BUDGET_MS = 60_000;
  const rand = prng(SEED);
  const store = await openTempStore(t);
  const work = await tempDir(t);
  const started = Date.now();
  let ok = 0, refusedCount = 0, n = 0;
  for (; n < CASES && Date.now() - started < BUDGET_MS; n++) {
    let tar = await tarBytes(randomEntries(rand)).catch(() => undefined);
    if (!tar) continue; // a header tar-stream cannot write (a name too long for it)
    if (rand() < 0.5) tar = mutate(tar, rand);
    const gzip = rand() < 0.25;
    const blob = gzip ? gzipSync(tar) : tar;
    const diffId = sha256(gzip ? gunzipSync(blob) : blob);
    const dir = path.join(work, `case-${n}`);
    await writeLayout(dir, [blob], {diffIds: [diffId], refName: `fuzz:${n}`});
    const before = await refs(store);
    try {
      const [img] = await importOciLayout(store, dir);
      ok++;
      const id = img!.layers[0]!.id;
      const chunks: Buffer[] = [];
      for await (const c of exportLayerStream(store, id)) chunks.push(c as Buffer);
      const again = await importTarStream(store, Readable.from([Buffer.concat(chunks)]));
      if (again.layer.id !== id) t.fail(`case ${n} (seed ${SEED}): re-import gives ${again.layer.id}, not ${id}`);
    } catch (err) {
      refusedCount++;
      const e = err as {name?: string; code?: string};
      if (e.name !== 'StoreError' || !CODES.has(e.code ?? '')) t.fail(`case ${n} (seed ${SEED}): ${String(err)}`);
      const after = await refs(store);
      if (JSON.stringify(after) !== JSON.stringify(before)) t.fail(`case ${n} (seed ${SEED}): a failed import changed the index`);
    }
    await fs.rm(dir, {recursive: true});
  }
  t.deepEqual(await fs.readdir(work), [], 'nothing written beside the layouts');
  t.deepEqual(await fs.readdir(path.join(store.dir, 'tmp')), []);
  t.deepEqual(await specialFiles(store.dir), []);
  t.true(ok > 10 && refusedCount > 10 && n >= MIN_CASES, `both outcomes exercised (${ok} imported, ${refusedCount} refused of ${n})`);
  t.log(`${n} cases: ${ok} imported, ${refusedCount} refused`);
});
