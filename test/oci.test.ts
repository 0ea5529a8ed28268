import {spawn} from 'node:child_process';
import {once} from 'node:events';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {STRATA_BIN, strata, tempDir, tempStore} from './_cli.js';
import {jsonOf} from './_fixtures.js';
import {peer, snapshot} from './_peers.js';

// Interop with real peers: umoci builds and unpacks images, skopeo inspects and converts
// them. Both must be installed (scripts/setup.js); a missing one fails the test.

const isRoot = process.getuid?.() === 0;

/**
 * An OCI layout `<tmp>/layout` whose image `layout:v1` umoci built in three layers from a
 * real tree: files, modes, owners, symlinks, a hardlink, a fifo, an empty directory; then
 * deleted files, a directory deleted and recreated, a file turned into a directory, and
 * a changed symlink; then a config.
 */
async function buildUmociImage(t: ExecutionContext): Promise<string> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-umoci-'));
  builtIn = work;
  const layout = path.join(work, 'layout');
  const bundle = path.join(work, 'bundle');
  const rootfs = path.join(bundle, 'rootfs');
  peer(t, 'umoci', ['init', '--layout', layout]);
  peer(t, 'umoci', ['new', '--image', `${layout}:v1`]);
  peer(t, 'umoci', ['unpack', ...(isRoot ? [] : ['--rootless']), '--image', `${layout}:v1`, bundle]);
  const w = async (rel: string, content: string | Buffer, mode = 0o644) => {
    await fs.mkdir(path.dirname(path.join(rootfs, rel)), {recursive: true});
    await fs.writeFile(path.join(rootfs, rel), content);
    await fs.chmod(path.join(rootfs, rel), mode);
  };
  const repack = (comment: string) => peer(t, 'umoci', ['repack', ...(isRoot ? [] : ['--rootless']), '--refresh-bundle', '--history.comment', comment, '--image', `${layout}:v1`, bundle]);

  await w('etc/hostname', 'strata\n');
  await w('etc/passwd', 'root:x:0:0::/root:/bin/sh\n', 0o600);
  await w('bin/app', Buffer.alloc(300_000, 9), 0o755);
  await w('bin/suid', 'suid', 0o4755);
  await fs.symlink('app', path.join(rootfs, 'bin/sh'));
  await fs.symlink('/etc/hostname', path.join(rootfs, 'name'));
  await fs.mkdir(path.join(rootfs, 'lib'));
  await fs.link(path.join(rootfs, 'bin/app'), path.join(rootfs, 'lib/app.so'));
  await w('data/old/a', 'a');
  await w('data/old/sub/b', 'b');
  await w('data/keep', 'keep');
  await w('home/user/notes', 'mine', 0o600);
  await w('sp ace/é ü', 'unicode');
  await fs.mkdir(path.join(rootfs, 'var/empty'), {recursive: true, mode: 0o700});
  await fs.mkdir(path.join(rootfs, 'tmp'), {mode: 0o1777});
  await fs.chmod(path.join(rootfs, 'tmp'), 0o1777);
  await fs.mkdir(path.join(rootfs, 'dev'));
  peer(t, 'mkfifo', [path.join(rootfs, 'dev/initctl')]);
  if (isRoot) await fs.chown(path.join(rootfs, 'home/user'), 1000, 1000), await fs.chown(path.join(rootfs, 'home/user/notes'), 1000, 100);
  repack('base');

  await fs.rm(path.join(rootfs, 'etc/passwd'));
  await fs.rm(path.join(rootfs, 'data/old'), {recursive: true});
  await w('data/old/new', 'recreated');
  await fs.rm(path.join(rootfs, 'name'));
  await fs.symlink('etc/hostname', path.join(rootfs, 'name'));
  await fs.chmod(path.join(rootfs, 'bin/app'), 0o700);
  await w('etc/motd', 'hello\n');
  repack('changes');

  await fs.rm(path.join(rootfs, 'bin/sh'));
  await fs.rm(path.join(rootfs, 'etc/motd'));
  await fs.mkdir(path.join(rootfs, 'etc/motd'));
  await w('etc/motd/today', 'a directory now');
  await fs.rm(path.join(rootfs, 'var/empty'), {recursive: true});
  repack('more');
  peer(t, 'umoci', ['config', '--image', `${layout}:v1`, '--config.env', 'PATH=/bin', '--config.cmd', '/bin/app', '--config.workingdir', '/data', '--config.label', 'a=1']);
  return layout;
}

let built: Promise<string> | undefined;
let builtIn: string | undefined;
test.after.always(async () => { if (builtIn) await fs.rm(builtIn, {recursive: true, force: true}); });

/** A copy of the umoci image (built once per test file), which the test may change. */
async function umociImage(t: ExecutionContext): Promise<string> {
  built ??= buildUmociImage(t);
  const copy = path.join(await tempDir(t, 'strata-umoci-copy-'), 'layout');
  await fs.cp(await built, copy, {recursive: true});
  return copy;
}

/** `strata checkout IMAGE DIR` with the real binary. */
async function checkout(t: ExecutionContext, store: string, image: string, dir: string): Promise<void> {
  const r = await strata(['checkout', image, dir], {store});
  if (r.code !== 0) t.fail(r.stderr);
}

async function unpack(t: ExecutionContext, image: string): Promise<string> {
  const bundle = path.join(await tempDir(t, 'strata-unpack-'), 'bundle');
  peer(t, 'umoci', ['unpack', ...(isRoot ? [] : ['--rootless']), '--image', image, bundle]);
  return path.join(bundle, 'rootfs');
}

async function layerIds(store: string, image: string): Promise<string[]> {
  const r = await strata(['image', 'inspect', image, '--json'], {store});
  return (JSON.parse(r.stdout) as {layers: {id: string}[]}).layers.map(l => l.id);
}

test('an image umoci built imports into strata, and its checkout equals umoci unpack', async t => {
  const layout = await umociImage(t);
  const store = await tempStore(t);
  const r = jsonOf<{format: string; images: {id: string; tags: string[]; layers: unknown[]}[]}>(t, await strata(['image', 'import', layout, '--json'], {store}));
  t.is(r.format, 'oci');
  t.deepEqual(r.images.map(i => [i.tags, i.layers.length]), [[['layout:v1'], 3]]);
  const inspect = jsonOf<{config: Record<string, unknown>}>(t, await strata(['image', 'inspect', 'layout:v1', '--json'], {store}));
  t.like(inspect.config, {env: ['PATH=/bin'], cmd: ['/bin/app'], workingDir: '/data', labels: {a: '1'}});
  const mine = path.join(await tempDir(t), 'checkout');
  await checkout(t, store, 'layout:v1', mine);
  const theirs = await unpack(t, `${layout}:v1`);
  const [a, b] = [await snapshot(mine), await snapshot(theirs)];
  t.deepEqual(a, b);
  t.is(a.nodes['data/old/new']?.content !== undefined && a.nodes['data/old/a'], undefined, 'the recreated directory holds only its new entry');
  t.is(a.nodes['etc/motd']?.type, 'dir');
});

test('an image strata exports is accepted by skopeo and umoci, converts both ways, and re-imports with the same layer ids', async t => {
  const layout = await umociImage(t);
  const store = await tempStore(t);
  t.is((await strata(['image', 'import', layout], {store})).code, 0);
  const ids = await layerIds(store, 'layout:v1');
  const out = await tempDir(t);
  const oci = path.join(out, 'oci');
  const exported = jsonOf<{manifest: string; layers: {digest: string; diffId: string}[]}>(t, await strata(['image', 'export', 'layout:v1', oci, '--json'], {store}));

  const inspected = JSON.parse(peer(t, 'skopeo', ['inspect', `oci:${oci}:layout:v1`])) as {Digest: string; Layers: string[]; Env: string[]};
  t.is(inspected.Digest, exported.manifest);
  t.deepEqual(inspected.Layers, exported.layers.map(l => l.digest));
  t.deepEqual(inspected.Env, ['PATH=/bin']);

  // umoci unpack of strata's export equals strata's own checkout.
  const mine = path.join(out, 'checkout');
  await checkout(t, store, 'layout:v1', mine);
  t.deepEqual(await snapshot(await unpack(t, `${oci}:layout:v1`)), await snapshot(mine));

  // oci: -> docker-archive: by skopeo, back into strata.
  const viaSkopeo = path.join(out, 'skopeo.tar');
  peer(t, 'skopeo', ['copy', '-q', `oci:${oci}:layout:v1`, `docker-archive:${viaSkopeo}:again:1`]);
  const back = jsonOf<{format: string; images: {tags: string[]; layers: {id: string}[]}[]}>(t, await strata(['image', 'import', viaSkopeo, '--json'], {store}));
  t.is(back.format, 'docker');
  t.deepEqual(back.images[0]!.tags, ['again:1']);
  t.deepEqual(back.images[0]!.layers.map(l => l.id), ids);

  // strata's docker archive -> oci: by skopeo, back into strata.
  const archive = path.join(out, 'strata.tar');
  t.is((await strata(['image', 'export', 'layout:v1', archive, '--format', 'docker'], {store})).code, 0);
  peer(t, 'skopeo', ['inspect', `docker-archive:${archive}`]);
  const viaOci = path.join(out, 'from-archive');
  peer(t, 'skopeo', ['copy', '-q', `docker-archive:${archive}`, `oci:${viaOci}:round`]);
  const round = jsonOf<{images: {tags: string[]; layers: {id: string}[]}[]}>(t, await strata(['image', 'import', viaOci, '--tag', 'round:2', '--json'], {store}));
  t.deepEqual(round.images[0]!.tags, ['round:2']);
  t.deepEqual(round.images[0]!.layers.map(l => l.id), ids);
});

test('exporting the same image twice gives byte-identical layouts and archives', async t => {
  const layout = await umociImage(t);
  const store = await tempStore(t);
  t.is((await strata(['image', 'import', layout], {store})).code, 0);
  const out = await tempDir(t);
  for (const [format, compress] of [['oci', 'gzip'], ['oci', 'zstd'], ['docker', 'none']] as const) {
    const [a, b] = [path.join(out, `${format}-${compress}-a`), path.join(out, `${format}-${compress}-b`)];
    for (const p of [a, b]) t.is((await strata(['image', 'export', 'layout:v1', p, '--format', format, '--compress', compress], {store})).code, 0);
    t.deepEqual(await snapshot(a).then(s => s.nodes), await snapshot(b).then(s => s.nodes), `${format} ${compress}`);
  }
});

test('layer export writes a tar that imports as the same layer', async t => {
  const store = await tempStore(t);
  const layout = await umociImage(t);
  t.is((await strata(['image', 'import', layout], {store})).code, 0);
  const ids = await layerIds(store, 'layout:v1');
  const out = await tempDir(t);
  for (const [i, id] of ids.entries()) {
    const file = path.join(out, `layer-${i}.tar.zst`);
    const r = jsonOf<{layer: string; mediaType: string; digest: string}>(t, await strata(['layer', 'export', id.slice(3, 15), file, '--compress', 'zstd', '--json'], {store}));
    t.is(r.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
    const again = jsonOf<{layer: string}>(t, await strata(['import', file, '--json'], {store}));
    t.is(again.layer, id);
  }
});

test('a tampered layer blob fails image import with one line, exit 1, and stores nothing', async t => {
  const layout = await umociImage(t);
  const store = await tempStore(t);
  const index = JSON.parse(await fs.readFile(path.join(layout, 'index.json'), 'utf8')) as {manifests: {digest: string}[]};
  const manifest = JSON.parse(await fs.readFile(path.join(layout, 'blobs/sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as {layers: {digest: string}[]};
  const blob = path.join(layout, 'blobs/sha256', manifest.layers[1]!.digest.slice(7));
  const bytes = await fs.readFile(blob);
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 9) ^ 0x55, bytes.length - 9); // gzip's CRC
  await fs.writeFile(blob, bytes);
  const r = await strata(['image', 'import', layout], {store});
  t.is(r.code, 1);
  t.regex(r.stderr, /^strata: .*(digest|hashes to|corrupt).*\n$/);
  t.is(r.stderr.split('\n').length, 2, 'one line, no stack');
  t.deepEqual(jsonOf(t, await strata(['images', '--json'], {store})), []);
  t.deepEqual(jsonOf(t, await strata(['layers', '--json'], {store})), []);
});

test('image import and export report usage mistakes and missing things on one line', async t => {
  const store = await tempStore(t);
  const missing = await strata(['image', 'import', '/nonexistent/strata-layout'], {store});
  t.is(missing.code, 1);
  t.is(missing.stderr, 'strata: /nonexistent/strata-layout does not exist\n');
  const badTag = await strata(['image', 'import', '.', '--tag', 'Not A Tag'], {store});
  t.is(badTag.code, 2);
  const badFormat = await strata(['image', 'export', 'x:1', 'out', '--format', 'zip'], {store});
  t.is(badFormat.code, 2);
  t.regex(badFormat.stderr, /--format must be oci or docker/);
  const badCompress = await strata(['layer', 'export', 'abc', 'out', '--compress', 'lz4'], {store});
  t.is(badCompress.code, 2);
  const unknown = await strata(['image', 'export', 'nope:1', path.join(await tempDir(t), 'x')], {store});
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /^strata: there is no image "nope:1"\n$/);
});

test('layer export to stdout stops quietly when the reader goes away, with any compression', async t => {
  const layout = await umociImage(t);
  const store = await tempStore(t);
  t.is((await strata(['image', 'import', layout], {store})).code, 0);
  const [id] = await layerIds(store, 'layout:v1');
  for (const compress of ['none', 'gzip', 'zstd']) {
    const child = spawn(STRATA_BIN, ['layer', 'export', id!, '-', '--compress', compress], {env: {...process.env, STRATA_STORE: store}, stdio: ['ignore', 'pipe', 'pipe']});
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', d => { stderr += d; });
    child.stdout.once('data', () => child.stdout.destroy()); // read one chunk, then hang up
    const [code] = await once(child, 'close') as [number];
    t.is(code, 0, `${compress}: ${stderr}`);
    t.is(stderr, '', compress);
  }
});
