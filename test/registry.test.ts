import {randomBytes} from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';
import test, {type ExecutionContext} from 'ava';
import type * as Harness from '../packages/registry/test/_registry.js';
import type * as Proxy from '../packages/registry/test/_proxy.js';
import {strata, strataOnTerminal, tempDir, tempStore} from './_cli.js';
import {jsonOf, storeState, writeTar, writeTree} from './_fixtures.js';
import {peer, snapshot} from './_peers.js';

// push and pull against Debian's docker-registry, started by each test on a free
// loopback port (the registry package's harness), with skopeo and umoci as the peers.

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const {startRegistry} = (await import(path.join(root, 'packages/registry/dist/test/_registry.js'))) as typeof Harness;
const {startFaultProxy} = (await import(path.join(root, 'packages/registry/dist/test/_proxy.js'))) as typeof Proxy;
const isRoot = process.getuid?.() === 0;
const INSECURE = '--tls-verify=false';

/** A strata store holding `app:1`: two layers (the second deletes and adds files). */
async function storeWithImage(t: ExecutionContext): Promise<string> {
  const store = await tempStore(t);
  const dir = await tempDir(t);
  await writeTree(path.join(dir, 'base'), {'etc/hostname': 'strata\n', 'bin/app': 'x'.repeat(100_000), 'data/old': 'old', 'data/keep': 'keep'});
  await fs.writeFile(path.join(dir, 'base', 'bin', 'noise'), randomBytes(200_000)); // incompressible: the layer blob is big
  const base = await strata(['import', path.join(dir, 'base'), '--tag', 'base:1'], {store});
  t.is(base.code, 0, base.stderr);
  const tar = await writeTar(path.join(dir, 'top.tar.gz'), [
    {name: 'data/', type: '5'}, {name: 'data/new', content: 'new'}, {name: 'data/.wh.old'}, {name: 'etc/', type: '5'}, {name: 'etc/motd', content: 'hello\n'},
  ]);
  const top = await strata(['import', tar, '--on', 'base:1', '--tag', 'app:1'], {store});
  t.is(top.code, 0, top.stderr);
  return store;
}

const blobGets = (log: Harness.AccessEntry[]) => log.filter(e => e.method === 'GET' && e.path.includes('/blobs/'));

test('a pushed image: skopeo inspect reports the printed digest, and skopeo copy + umoci unpack equals strata checkout', async t => {
  const reg = await startRegistry(t);
  const store = await storeWithImage(t);
  const dir = await tempDir(t);
  const digestFile = path.join(dir, 'digest');
  const push = await strata(['push', 'app:1', `docker://${reg.host}/team/app:1`, INSECURE, '--digestfile', digestFile], {store});
  t.is(push.code, 0, push.stderr);
  const printed = push.stdout.trim();
  t.regex(printed, /^sha256:[0-9a-f]{64}$/);
  t.is(await fs.readFile(digestFile, 'utf8'), printed);
  const inspect = JSON.parse(peer(t, 'skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/team/app:1`])) as {Digest: string; Layers: string[]};
  t.is(inspect.Digest, printed);
  t.is(inspect.Layers.length, 2);
  // The same image exported as a layout has the same manifest digest.
  const exported = jsonOf<{manifest: string}>(t, await strata(['image', 'export', 'app:1', path.join(dir, 'export'), '--json'], {store}));
  t.is(exported.manifest, printed);

  peer(t, 'skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/team/app:1`, `oci:${path.join(dir, 'layout')}:app`]);
  const bundle = path.join(dir, 'bundle');
  peer(t, 'umoci', ['unpack', ...(isRoot ? [] : ['--rootless']), '--image', `${path.join(dir, 'layout')}:app`, bundle]);
  const mine = path.join(dir, 'checkout');
  const co = await strata(['checkout', 'app:1', mine], {store});
  t.is(co.code, 0, co.stderr);
  t.deepEqual(await snapshot(mine), await snapshot(path.join(bundle, 'rootfs')));
});

test('a re-push checks and sends only the manifest; a push to another repository mounts the layers', async t => {
  const reg = await startRegistry(t);
  const store = await storeWithImage(t);
  const first = await strata(['push', 'app:1', `${reg.host}/team/app:1`, INSECURE], {store});
  t.is(first.code, 0, first.stderr);
  const before = (await reg.accessLog()).length;
  const again = await strata(['push', 'app:1', `${reg.host}/team/app:1`, INSECURE, '--json'], {store});
  const report = jsonOf<{manifest: string; blobs: {action: string}[]; uploadedBytes: number}>(t, again);
  t.is(report.manifest, first.stdout.trim());
  t.deepEqual(report.blobs.map(b => b.action), ['present', 'present', 'present']);
  const log = (await reg.accessLog()).slice(before);
  t.deepEqual([...new Set(log.map(e => `${e.method} ${e.path.replace(/sha256:[0-9a-f]+/, 'D')}`))].sort(), [
    'GET /v2/', 'HEAD /v2/team/app/blobs/D', 'PUT /v2/team/app/manifests/1',
  ]);
  t.is(log.filter(e => e.method === 'PUT').length, 1);

  const other = jsonOf<{blobs: {action: string}[]}>(t, await strata(['push', 'app:1', `${reg.host}/other/app:1`, INSECURE, '--json'], {store}));
  t.deepEqual(other.blobs.map(b => b.action), ['mounted', 'mounted', 'mounted']);
});

/** A layout umoci built in three layers (files, a deletion, a directory replaced), pushed with skopeo. */
async function skopeoPushed(t: ExecutionContext, host: string, repo: string): Promise<{layout: string}> {
  const work = await tempDir(t, 'strata-umoci-');
  const layout = path.join(work, 'layout');
  const bundle = path.join(work, 'bundle');
  const rootfs = path.join(bundle, 'rootfs');
  const umoci = (args: string[]) => peer(t, 'umoci', args);
  umoci(['init', '--layout', layout]);
  umoci(['new', '--image', `${layout}:v1`]);
  umoci(['unpack', ...(isRoot ? [] : ['--rootless']), '--image', `${layout}:v1`, bundle]);
  const repack = (comment: string) => umoci(['repack', ...(isRoot ? [] : ['--rootless']), '--refresh-bundle', '--history.comment', comment, '--image', `${layout}:v1`, bundle]);
  await writeTree(rootfs, {'etc/hostname': 'umoci\n', 'bin/tool': 'y'.repeat(200_000), 'data/old/a': 'a', 'data/old/b': 'b', 'data/keep': 'k'});
  await fs.symlink('tool', path.join(rootfs, 'bin/alias'));
  repack('base');
  await fs.rm(path.join(rootfs, 'data/old'), {recursive: true});
  await writeTree(rootfs, {'data/old/fresh': 'recreated', 'etc/motd': 'hi\n'});
  repack('changes');
  await fs.rm(path.join(rootfs, 'bin/alias'));
  await fs.rm(path.join(rootfs, 'etc/motd'));
  await writeTree(rootfs, {'etc/motd/today': 'a directory now'});
  repack('more');
  peer(t, 'skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${host}/${repo}`]);
  return {layout};
}

test('an image skopeo pushed pulls into strata, checks out equal to umoci unpack, and pushes back byte-identical', async t => {
  const reg = await startRegistry(t);
  const {layout} = await skopeoPushed(t, reg.host, 'lab/tool:v1');
  const store = await tempStore(t);
  const pulled = jsonOf<{tags: string[]; layers: unknown[]; manifest: string}>(t, await strata(['pull', `${reg.host}/lab/tool:v1`, INSECURE, '--json'], {store}));
  t.deepEqual(pulled.tags, [`${reg.host}/lab/tool:v1`]);
  t.is(pulled.layers.length, 3);
  const images = jsonOf<{tags: string[]}[]>(t, await strata(['images', '--json'], {store}));
  t.deepEqual(images.flatMap(i => i.tags), [`${reg.host}/lab/tool:v1`]);
  const dir = await tempDir(t);
  const bundle = path.join(dir, 'bundle');
  peer(t, 'umoci', ['unpack', ...(isRoot ? [] : ['--rootless']), '--image', `${layout}:v1`, bundle]);
  const co = await strata(['checkout', `${reg.host}/lab/tool:v1`, path.join(dir, 'mine')], {store});
  t.is(co.code, 0, co.stderr);
  t.deepEqual(await snapshot(path.join(dir, 'mine')), await snapshot(path.join(bundle, 'rootfs')));
  // Unchanged, it goes back as its original bytes: the same digest, in another repository too.
  const push = await strata(['push', `${reg.host}/lab/tool:v1`, `${reg.host}/mirror/tool:v1`, INSECURE], {store});
  t.is(push.code, 0, push.stderr);
  t.is(push.stdout.trim(), pulled.manifest);
  const inspect = JSON.parse(peer(t, 'skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/lab/tool:v1`])) as {Digest: string};
  t.is(inspect.Digest, pulled.manifest);
});

test('a commit on a pulled image pushes with the original layer blobs and an extension of the original config', async t => {
  const reg = await startRegistry(t);
  await skopeoPushed(t, reg.host, 'lab/tool:v1');
  const store = await tempStore(t);
  t.is((await strata(['pull', `${reg.host}/lab/tool:v1`, INSECURE], {store})).code, 0);
  t.is((await strata(['create', `${reg.host}/lab/tool:v1`, '--name', 'c'], {store})).code, 0);
  t.is((await strata(['fs', 'c', 'write', '/etc/added'], {store, input: 'added\n'})).code, 0);
  const commit = await strata(['commit', 'c', '--tag', 'tool:2'], {store});
  t.is(commit.code, 0, commit.stderr);
  const push = await strata(['push', 'tool:2', `${reg.host}/lab/tool:v2`, INSECURE], {store});
  t.is(push.code, 0, push.stderr);
  const inspect = (ref: string, config = false) => JSON.parse(peer(t, 'skopeo', ['inspect', ...(config ? ['--config'] : []), '--tls-verify=false', `docker://${reg.host}/lab/${ref}`]));
  const [v1, v2] = [inspect('tool:v1'), inspect('tool:v2')];
  t.is(v2.Digest, push.stdout.trim());
  t.deepEqual(v2.Layers.slice(0, 3), v1.Layers);
  t.is(v2.Layers.length, 4);
  const [c1, c2] = [inspect('tool:v1', true), inspect('tool:v2', true)];
  t.deepEqual(c2.rootfs.diff_ids.slice(0, 3), c1.rootfs.diff_ids);
  t.is(c2.created, c1.created);
  t.deepEqual(c2.history.slice(0, c1.history.length), c1.history);
  t.is(c2.history.length, c1.history.length + 1);
  const other = await tempStore(t);
  t.is((await strata(['pull', `${reg.host}/lab/tool:v2`, INSECURE], {store: other})).code, 0);
  t.is((await strata(['cat', `${reg.host}/lab/tool:v2`, '/etc/added'], {store: other})).stdout, 'added\n');
});

test('pulling an image whose base the store has fetches only the new layer', async t => {
  const reg = await startRegistry(t);
  const src = await storeWithImage(t);
  for (const [image, ref] of [['base:1', 'team/base:1'], ['app:1', 'team/app:1']]) {
    const r = await strata(['push', image!, `${reg.host}/${ref}`, INSECURE], {store: src});
    t.is(r.code, 0, r.stderr);
  }
  const store = await tempStore(t);
  const base = await strata(['pull', `${reg.host}/team/base:1`, INSECURE], {store});
  t.is(base.code, 0, base.stderr);
  const before = (await reg.accessLog()).length;
  const app = jsonOf<{blobs: {digest: string; fetched: boolean}[]}>(t, await strata(['pull', `${reg.host}/team/app:1`, INSECURE, '--json'], {store}));
  t.deepEqual(app.blobs.map(b => b.fetched), [false, true]);
  const gets = blobGets((await reg.accessLog()).slice(before));
  // The config and the one new layer.
  t.is(gets.length, 2);
  t.true(gets.some(g => g.path.endsWith(app.blobs[1]!.digest)));
  t.false(gets.some(g => g.path.endsWith(app.blobs[0]!.digest)));
});

test('a token registry: --creds and an auth file work, a wrong password is one line', async t => {
  const reg = await startRegistry(t, {token: {username: 'strata', password: 'secret'}});
  const store = await storeWithImage(t);
  const denied = await strata(['push', 'base:1', `${reg.host}/team/base:1`, INSECURE], {store, env: {REGISTRY_AUTH_FILE: path.join(await tempDir(t), 'none.json')}});
  t.is(denied.code, 1);
  const wrong = await strata(['push', 'base:1', `${reg.host}/team/base:1`, INSECURE, '--creds', 'strata:wrong'], {store});
  t.is(wrong.code, 1);
  t.is(wrong.stderr, `strata: ${reg.host} refused the credentials of strata (the token server answered 401)\n`);
  const ok = await strata(['push', 'base:1', `${reg.host}/team/base:1`, INSECURE, '--creds', 'strata:secret'], {store});
  t.is(ok.code, 0, ok.stderr);
  const authfile = path.join(await tempDir(t), 'auth.json');
  const login = await strata(['login', reg.host, '--username', 'strata', '--password-stdin', '--authfile', authfile, INSECURE], {input: 'secret\n'});
  t.is(login.code, 0, login.stderr);
  const badLogin = await strata(['login', reg.host, '-u', 'strata', '-p', 'nope', '--authfile', path.join(path.dirname(authfile), 'other.json'), INSECURE]);
  t.is(badLogin.code, 1);
  const other = await tempStore(t);
  const pull = await strata(['pull', `${reg.host}/team/base:1`, INSECURE, '--authfile', authfile], {store: other});
  t.is(pull.code, 0, pull.stderr);
  const logout = await strata(['logout', reg.host, '--authfile', authfile]);
  t.is(logout.code, 0, logout.stderr);
  t.deepEqual(JSON.parse(await fs.readFile(authfile, 'utf8')), {auths: {}});
});

test('a Basic-auth registry: login --creds stores the credential that push and pull then use; a wrong password is one line; logout removes it', async t => {
  const reg = await startRegistry(t, {htpasswd: {username: 'strata', password: 'secret'}});
  const store = await storeWithImage(t);
  const dir = await tempDir(t);
  const authfile = path.join(dir, 'auth.json');
  const env = {REGISTRY_AUTH_FILE: authfile};
  const anonymous = await strata(['push', 'base:1', `${reg.host}/team/base:1`, INSECURE], {store, env});
  t.is(anonymous.code, 1);
  t.regex(anonymous.stderr, new RegExp(`^strata: ${reg.host}: .* answered 401 .*; give --creds USER:PASS or run "strata login ${reg.host}"\n$`));
  const wrong = await strata(['login', reg.host, '--creds', 'strata:wrong', INSECURE], {env});
  t.is(wrong.code, 1);
  t.is(wrong.stderr, `strata: ${reg.host} refused the credentials of strata (GET /v2/ answered 401)\n`);
  await t.throwsAsync(fs.access(authfile), {code: 'ENOENT'}); // nothing stored
  const both = await strata(['login', reg.host, '--creds', 'strata:secret', '-u', 'strata', INSECURE], {env});
  t.is(both.code, 2);
  const login = await strata(['login', reg.host, '--creds', 'strata:secret', INSECURE], {env});
  t.is(login.code, 0, login.stderr);
  t.deepEqual(JSON.parse(await fs.readFile(authfile, 'utf8')), {auths: {[reg.host]: {auth: Buffer.from('strata:secret').toString('base64')}}});
  t.is((await fs.stat(authfile)).mode & 0o777, 0o600);
  const push = await strata(['push', 'base:1', `${reg.host}/team/base:1`, INSECURE], {store, env});
  t.is(push.code, 0, push.stderr);
  const pull = await strata(['pull', `${reg.host}/team/base:1`, INSECURE], {store: await tempStore(t), env});
  t.is(pull.code, 0, pull.stderr);
  t.is(push.stdout.trim(), peer(t, 'skopeo', ['inspect', INSECURE, '--authfile', authfile, '--format', '{{.Digest}}', `docker://${reg.host}/team/base:1`]).trim());
  const logout = await strata(['logout', reg.host], {env});
  t.is(logout.code, 0, logout.stderr);
  t.deepEqual(JSON.parse(await fs.readFile(authfile, 'utf8')), {auths: {}});
  const after = await strata(['pull', `${reg.host}/team/base:1`, INSECURE], {store: await tempStore(t), env});
  t.is(after.code, 1);
});

test('a blob cut mid-way is resumed; wrong bytes and a missing blob are refused and leave the store as it was', async t => {
  const reg = await startRegistry(t);
  const src = await storeWithImage(t);
  const push = await strata(['push', 'app:1', `${reg.host}/team/app:1`, INSECURE, '--json'], {store: src});
  const layers = jsonOf<{blobs: {digest: string; size: number}[]}>(t, push).blobs.slice(1);
  const big = layers.reduce((a, b) => (a.size >= b.size ? a : b));
  const blob = new RegExp(`/blobs/${big.digest}`);

  const store = await tempStore(t);
  const before = await storeState(t, store);
  const corrupting = await startFaultProxy(t, reg.host);
  corrupting.add({method: 'GET', path: blob, fault: {kind: 'corrupt'}});
  const bad = await strata(['pull', `${corrupting.host}/team/app:1`, INSECURE], {store});
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^strata: .*hash.*\n$/);
  t.deepEqual(await storeState(t, store), before);

  const losing = await startFaultProxy(t, reg.host);
  losing.add({method: 'GET', path: blob, fault: {kind: 'status', status: 404}});
  const missing = await strata(['pull', `${losing.host}/team/app:1`, INSECURE], {store});
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^strata: .*404.*\n$/);
  t.deepEqual(await storeState(t, store), before);

  const cutting = await startFaultProxy(t, reg.host);
  cutting.add({method: 'GET', path: blob, fault: {kind: 'cut', after: 30_000}});
  const resumed = await strata(['pull', `${cutting.host}/team/app:1`, INSECURE], {store});
  t.is(resumed.code, 0, resumed.stderr);
  const ranges = cutting.seen.filter(s => blob.test(s) && / bytes=\d+-$/.test(s));
  t.is(ranges.length, 1, cutting.seen.join('\n'));
  const co = await strata(['cat', `${cutting.host}/team/app:1`, '/data/new'], {store});
  t.is(co.stdout, 'new');
});

test('a cut that cannot be resumed (the server ignores Range) is one line and leaves the store as it was; two cuts are resumed twice', async t => {
  const reg = await startRegistry(t);
  const src = await storeWithImage(t);
  const layers = jsonOf<{blobs: {digest: string; size: number}[]}>(t, await strata(['push', 'app:1', `${reg.host}/team/app:1`, INSECURE, '--json'], {store: src})).blobs.slice(1);
  const big = layers.reduce((a, b) => (a.size >= b.size ? a : b));
  const blob = new RegExp(`/blobs/${big.digest}`);
  const store = await tempStore(t);
  const before = await storeState(t, store);
  const stubborn = await startFaultProxy(t, reg.host);
  stubborn.add({method: 'GET', path: blob, fault: {kind: 'cut', after: 50_000}});
  stubborn.add({method: 'GET', path: blob, fault: {kind: 'ignore-range'}});
  const failed = await strata(['pull', `${stubborn.host}/team/app:1`, INSECURE], {store});
  t.is(failed.code, 1);
  t.regex(failed.stderr, new RegExp(`^strata: ${stubborn.host} answered the whole of blob team/app@${big.digest} to a request for its bytes from \\d+ on; it cannot be resumed\n$`));
  t.deepEqual(await storeState(t, store), before);

  const flaky = await startFaultProxy(t, reg.host);
  flaky.add({method: 'GET', path: blob, fault: {kind: 'cut', after: 40_000}});
  flaky.add({method: 'GET', path: blob, fault: {kind: 'cut', after: 40_000}});
  const pulled = await strata(['pull', `${flaky.host}/team/app:1`, INSECURE, '--json'], {store});
  t.is(pulled.code, 0, pulled.stderr);
  const starts = flaky.seen.filter(s => blob.test(s)).map(s => Number(/ bytes=(\d+)-$/.exec(s)?.[1] ?? 0));
  t.is(starts.length, 3, flaky.seen.join('\n'));
  t.true(starts[0] === 0 && starts[1]! > 0 && starts[2]! > starts[1]!, starts.join(' '));
  t.is(jsonOf<{fetchedBytes: number}>(t, pulled).fetchedBytes, layers.reduce((n, l) => n + l.size, 0));
});

test('pull and push show progress in bytes on a terminal', async t => {
  const reg = await startRegistry(t);
  const src = await storeWithImage(t);
  const env = {STRATA_PROGRESS_AFTER_MS: '0'};
  const frames = (output: string, verb: string) => output.replace(/\x1b\[0K|\x1b[78]|\x1b\[2K/g, '').split(/\x1b\[1G|\r|\n/).filter(l => l.startsWith(`${verb} `));
  const push = await strataOnTerminal(['push', 'app:1', `${reg.host}/team/app:1`, INSECURE], {store: src, env});
  t.is(push.code, 0, push.output);
  const pushed = frames(push.output, 'pushing');
  t.true(pushed.length > 0, push.output);
  for (const f of pushed) t.regex(f, /^pushing .* layer [0-2]\/2 \| [\d.]+ (B|KiB|MiB) uploaded$/);
  const pull = await strataOnTerminal(['pull', `${reg.host}/team/app:1`, INSECURE], {store: await tempStore(t), env});
  t.is(pull.code, 0, pull.output);
  const pulled = frames(pull.output, 'pulling');
  t.true(pulled.length > 0, pull.output);
  for (const f of pulled) {
    const m = /^pulling .* (\d+)% \| [\d.]+ (B|KiB|MiB)\/[\d.]+ (B|KiB|MiB) \| 2 of 2/.exec(f); // the rest may be cut at the terminal's width
    t.truthy(m, f);
    t.true(Number(m![1]) <= 100, f);
  }
});

test('a registry that goes away mid-push fails the push in one line, and the next push completes', async t => {
  const reg = await startRegistry(t);
  const store = await storeWithImage(t);
  const proxy = await startFaultProxy(t, reg.host);
  proxy.add({method: 'PUT', path: /\/manifests\//, fault: {kind: 'drop'}, times: 100});
  const failed = await strata(['push', 'app:1', `${proxy.host}/team/app:1`, INSECURE], {store});
  t.is(failed.code, 1);
  t.regex(failed.stderr, /^strata: .*cannot be reached.*\n$/);
  const manifest = await fetch(`http://${reg.host}/v2/team/app/manifests/1`, {headers: {Accept: 'application/vnd.oci.image.manifest.v1+json'}});
  t.is(manifest.status, 404);
  const done = await strata(['push', 'app:1', `${reg.host}/team/app:1`, INSECURE], {store});
  t.is(done.code, 0, done.stderr);
  t.regex(done.stdout, /^sha256:/);
});

test('gc drops the registry records of a removed pulled image, and keeps those of a tagged one', async t => {
  const reg = await startRegistry(t);
  const src = await storeWithImage(t);
  t.is((await strata(['push', 'app:1', `${reg.host}/team/app:1`, INSECURE], {store: src})).code, 0);
  const store = await tempStore(t);
  t.is((await strata(['pull', `${reg.host}/team/app:1`, INSECURE, '--tag', 'kept:1'], {store})).code, 0);
  t.is((await strata(['pull', `${reg.host}/team/app:1`, INSECURE, '--tag', 'gone:1'], {store})).code, 0);
  const rm = await strata(['image', 'rm', 'gone:1'], {store});
  t.is(rm.code, 0, rm.stderr);
  const gc = jsonOf<{byKind: Record<string, {count: number}>}>(t, await strata(['gc', '--json'], {store}));
  t.is(gc.byKind.registry?.count, 0, 'one image with two tags: nothing to drop');
  t.is((await strata(['image', 'rm', 'kept:1'], {store})).code, 0);
  const gc2 = jsonOf<{byKind: Record<string, {count: number}>}>(t, await strata(['gc', '--json'], {store}));
  t.true((gc2.byKind.registry?.count ?? 0) > 0);
  const gc3 = jsonOf<{objects: number}>(t, await strata(['gc', '--json'], {store}));
  t.is(gc3.objects, 0);
  const verify = await strata(['verify'], {store});
  t.is(verify.code, 0, verify.stdout + verify.stderr);
});
