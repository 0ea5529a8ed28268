import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {STRATA_BIN, shellQuote, strata, tempDir, tempStore} from './_cli.js';
import {jsonOf, writeTar} from './_fixtures.js';
import {peer} from './_peers.js';

// The formats users bring (issue: "formats users bring"): standard input, OCI archives,
// xz and bzip2, and zstd without the zstd program. Each case runs the real binary.

const MEMBERS = [
  {name: 'etc/', type: '5' as const},
  {name: 'etc/hostname', content: 'strata\n'},
  {name: 'bin/', type: '5' as const},
  {name: 'bin/app', content: 'app '.repeat(5000), mode: 0o755},
];

/** A plain tar of a small tree, and the layer id strata gives it. */
async function plainTar(t: ExecutionContext, store: string): Promise<{tar: string; layer: string; dir: string}> {
  const dir = await tempDir(t);
  const tar = await writeTar(path.join(dir, 'layer.tar'), MEMBERS);
  const layer = jsonOf<{layer: string}>(t, await strata(['import', tar, '--json'], {store})).layer;
  return {tar, layer, dir};
}

/** Runs a shell pipeline whose last stage is strata; returns its exit code and output. */
function pipeline(t: ExecutionContext, line: string, store: string, env: Record<string, string> = {}): {code: number; stdout: string; stderr: string} {
  const r = spawnSync('sh', ['-c', line], {env: {...process.env, NO_COLOR: '1', STRATA_STORE: store, STRATA: STRATA_BIN, ...env}, encoding: 'utf8'});
  if (r.error) t.fail(`sh: ${r.error.message}`);
  return {code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr};
}

/** A directory whose only program is node: no zstd, xz or bzip2 on PATH. */
async function pathWithOnlyNode(t: ExecutionContext): Promise<string> {
  const bin = await tempDir(t, 'strata-path-');
  await fs.symlink(process.execPath, path.join(bin, 'node'));
  return bin;
}

test('import - reads a tar from standard input, compressed or not', async t => {
  const store = await tempStore(t);
  const {tar, layer} = await plainTar(t, store);
  for (const stage of ['cat', 'gzip -c', 'zstd -q -c', 'xz -c', 'bzip2 -c']) {
    const r = pipeline(t, `${stage} ${shellQuote(tar)} | "$STRATA" import - --json`, store);
    t.is(r.code, 0, `${stage}: ${r.stderr}`);
    t.is(jsonOf<{layer: string}>(t, r).layer, layer, stage);
  }
});

test('import - refuses a terminal on standard input and an empty stream', async t => {
  const store = await tempStore(t);
  const empty = pipeline(t, '"$STRATA" import - < /dev/null', store);
  t.is(empty.code, 1);
  t.regex(empty.stderr, /^strata: standard input is empty, not a tar archive\n$/);
});

test('xz and bzip2 tar files import as the same layer as the plain tar', async t => {
  const store = await tempStore(t);
  const {tar, layer, dir} = await plainTar(t, store);
  for (const [program, ext] of [['xz', 'xz'], ['bzip2', 'bz2']] as const) {
    const file = path.join(dir, `layer.tar.${ext}`);
    await fs.writeFile(file, peerBytes(t, program, ['-c', tar]));
    t.is(jsonOf<{layer: string}>(t, await strata(['import', file, '--json'], {store})).layer, layer, program);
  }
});

test('zstd works without the zstd program: import of a zstd tar and export with --compress zstd', async t => {
  const store = await tempStore(t);
  const {tar, layer, dir} = await plainTar(t, store);
  const zst = path.join(dir, 'layer.tar.zst');
  await fs.writeFile(zst, peerBytes(t, 'zstd', ['-q', '-c', tar]));
  const env = {PATH: await pathWithOnlyNode(t)};
  t.is(jsonOf<{layer: string}>(t, await strata(['import', zst, '--json'], {store, env})).layer, layer);
  const out = path.join(dir, 'out.tar.zst');
  const r = await strata(['layer', 'export', layer, out, '--compress', 'zstd', '--json'], {store, env});
  t.is(r.code, 0, r.stderr);
  const plain = path.join(dir, 'out.tar');
  t.is((await strata(['layer', 'export', layer, plain, '--compress', 'none'], {store})).code, 0);
  // The zstd program reads what the library wrote, byte for byte the plain export.
  t.true(peerBytes(t, 'zstd', ['-dc', out]).equals(await fs.readFile(plain)));
  // And the same layer gives the same bytes again.
  const again = path.join(dir, 'again.tar.zst');
  t.is((await strata(['layer', 'export', layer, again, '--compress', 'zstd'], {store, env})).code, 0);
  t.true((await fs.readFile(again)).equals(await fs.readFile(out)));
});

test('an xz archive without the xz program is named precisely, and nothing is stored', async t => {
  const store = await tempStore(t);
  const dir = await tempDir(t);
  const tar = await writeTar(path.join(dir, 'layer.tar'), MEMBERS);
  const xz = path.join(dir, 'layer.tar.xz');
  await fs.writeFile(xz, peerBytes(t, 'xz', ['-c', tar]));
  const r = await strata(['import', xz], {store, env: {PATH: await pathWithOnlyNode(t)}});
  t.is(r.code, 1);
  t.regex(r.stderr, /^strata: .*xz-compressed and the xz program is not installed/);
  t.deepEqual(jsonOf(t, await strata(['layers', '--json'], {store})), []);
});

/** A docker archive of a two-layer image, written by strata. */
async function dockerArchive(t: ExecutionContext): Promise<{store: string; archive: string; image: string; dir: string}> {
  const store = await tempStore(t);
  const dir = await tempDir(t);
  const tar = await writeTar(path.join(dir, 'base.tar'), MEMBERS);
  t.is((await strata(['import', tar, '--tag', 'base:1'], {store})).code, 0);
  const top = await writeTar(path.join(dir, 'top.tar'), [{name: 'etc/motd', content: 'hello\n'}]);
  const image = jsonOf<{image: string}>(t, await strata(['import', top, '--on', 'base:1', '--tag', 'app:1', '--json'], {store})).image;
  const archive = path.join(dir, 'app.tar');
  t.is((await strata(['image', 'export', 'app:1', archive, '--format', 'docker'], {store})).code, 0);
  return {store, archive, image, dir};
}

test('image import - reads a docker archive from standard input (podman save | strata image import -)', async t => {
  const {archive, image} = await dockerArchive(t);
  const store = await tempStore(t);
  const r = pipeline(t, `cat ${shellQuote(archive)} | "$STRATA" image import - --json`, store);
  t.is(r.code, 0, r.stderr);
  const report = jsonOf<{source: string; format: string; images: {id: string; tags: string[]}[]}>(t, r);
  t.like(report, {source: '-', format: 'docker'});
  t.deepEqual(report.images.map(i => [i.id, i.tags]), [[image, ['app:1']]]);
  // The spooled copy is gone.
  t.deepEqual(await fs.readdir(path.join(store, 'tmp')), []);
});

test('an xz- or bzip2-compressed docker archive imports as the plain one does', async t => {
  const {archive, image, dir} = await dockerArchive(t);
  for (const [program, ext] of [['xz', 'xz'], ['bzip2', 'bz2']] as const) {
    const store = await tempStore(t);
    const file = path.join(dir, `app.tar.${ext}`);
    await fs.writeFile(file, peerBytes(t, program, ['-c', archive]));
    const report = jsonOf<{images: {id: string}[]}>(t, await strata(['image', 'import', file, '--json'], {store}));
    t.deepEqual(report.images.map(i => i.id), [image], program);
  }
});

test('an OCI archive (skopeo oci-archive:) imports as the same image as its layout', async t => {
  const {store: from, image, dir} = await dockerArchive(t);
  const layout = path.join(dir, 'app-oci');
  t.is((await strata(['image', 'export', 'app:1', layout], {store: from})).code, 0);
  const archive = path.join(dir, 'app-oci.tar');
  peer(t, 'skopeo', ['copy', '-q', `oci:${layout}:app:1`, `oci-archive:${archive}:app:1`]);
  const store = await tempStore(t);
  const report = jsonOf<{format: string; images: {id: string; tags: string[]}[]}>(t, await strata(['image', 'import', archive, '--json'], {store}));
  t.is(report.format, 'oci-archive');
  t.deepEqual(report.images.map(i => [i.id, i.tags]), [[image, ['app:1']]]);
  t.deepEqual(await fs.readdir(path.join(store, 'tmp')), []);
  // Through a pipe too, compressed.
  const piped = await tempStore(t);
  const r = pipeline(t, `gzip -c ${shellQuote(archive)} | "$STRATA" image import - --json`, piped);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(jsonOf<{images: {id: string}[]}>(t, r).images.map(i => i.id), [image]);
});

test('an archive that is neither docker nor OCI says which files it lacks', async t => {
  const store = await tempStore(t);
  const dir = await tempDir(t);
  const tar = await writeTar(path.join(dir, 'plain.tar'), MEMBERS);
  const r = await strata(['image', 'import', tar], {store});
  t.is(r.code, 1);
  t.regex(r.stderr, /^strata: .*plain\.tar is neither a docker archive \(it has no manifest\.json\) nor an OCI archive \(it has no oci-layout and index\.json\)\n$/);
});

/** A peer's stdout as bytes (peer() returns text). */
function peerBytes(t: ExecutionContext, cmd: string, args: readonly string[]): Buffer {
  const r = spawnSync(cmd, args, {maxBuffer: 1 << 28});
  if (r.error) throw new Error(`${cmd} is not installed (scripts/setup.js installs it): ${r.error.message}`);
  if (r.status !== 0) t.fail(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}
