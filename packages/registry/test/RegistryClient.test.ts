import {randomBytes} from 'node:crypto';
import {Readable} from 'node:stream';
import test from 'ava';
import {MANIFEST_TYPES, RegistryClient, type RegistryClientOptions} from '../src/index.js';
import {startFaultProxy} from './_proxy.js';
import {sha256, startRegistry} from './_registry.js';

const FAST = {retries: 3, baseMs: 5, minMs: 5, maxMs: 20};
const client = (host: string, options: RegistryClientOptions = {}) => new RegistryClient(host, {tlsVerify: false, retry: FAST, ...options});

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A blob of `n` random bytes, uploaded; returns its bytes and digest. */
async function pushed(c: RegistryClient, repo: string, n: number): Promise<{bytes: Buffer; digest: string}> {
  const bytes = randomBytes(n);
  const {digest} = await c.pushBlob(repo, () => Readable.from([bytes.subarray(0, n >> 1), bytes.subarray(n >> 1)]));
  return {bytes, digest};
}

function manifestOf(config: {digest: string; size: number}, layers: {digest: string; size: number}[]): Buffer {
  return Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MANIFEST_TYPES.ociManifest,
    config: {mediaType: 'application/vnd.oci.image.config.v1+json', ...config},
    layers: layers.map(l => ({mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l}))}));
}

test('a streamed upload, HEAD, verified GET and a manifest round trip with exact bytes', async t => {
  const reg = await startRegistry(t);
  const c = client(reg.host);
  const {bytes, digest} = await pushed(c, 'lab/app', 300_000);
  t.is(digest, sha256(bytes));
  t.is(await c.blobSize('lab/app', digest), bytes.length);
  t.is(await c.blobSize('lab/other', digest), undefined); // blobs are linked per repository
  t.is(sha256(await readAll(c.fetchBlob('lab/app', digest, {size: bytes.length}))), sha256(bytes));
  const config = Buffer.from('{"rootfs":{"type":"layers","diff_ids":[]}}');
  const cfg = await c.pushBlob('lab/app', () => Readable.from([config]), {digest: sha256(config)});
  const manifest = manifestOf(cfg, [{digest, size: bytes.length}]);
  t.is(await c.putManifest('lab/app', '1', manifest, MANIFEST_TYPES.ociManifest), sha256(manifest));
  const got = await c.getManifest('lab/app', '1');
  t.deepEqual(got, {bytes: manifest, digest: sha256(manifest), mediaType: MANIFEST_TYPES.ociManifest});
  t.is(await c.manifestDigest('lab/app', '1'), sha256(manifest));
  t.deepEqual((await c.getManifest('lab/app', sha256(manifest))).bytes, manifest);
  const log = (await reg.accessLog()).filter(e => e.path.includes('/uploads/')).map(e => `${e.method} ${e.status}`);
  t.deepEqual(log.slice(0, 3), ['POST 202', 'PATCH 202', 'PUT 201']);
});

test('an unknown manifest and blob are coded', async t => {
  const reg = await startRegistry(t);
  const c = client(reg.host);
  await t.throwsAsync(c.getManifest('lab/none', 'x'), {code: 'MANIFEST_UNKNOWN'});
  await t.throwsAsync(readAll(c.fetchBlob('lab/none', sha256('nothing'))), {code: 'BLOB_UNKNOWN'});
});

test('a manifest naming a missing blob is refused by the registry as BLOB_UNKNOWN', async t => {
  const reg = await startRegistry(t);
  const c = client(reg.host);
  const m = manifestOf({digest: sha256('a'), size: 1}, [{digest: sha256('b'), size: 1}]);
  await t.throwsAsync(c.putManifest('lab/app', '1', m, MANIFEST_TYPES.ociManifest), {code: 'BLOB_UNKNOWN'});
});

test('a cross-repository mount links a blob the source holds, and says false otherwise', async t => {
  const reg = await startRegistry(t);
  const c = client(reg.host);
  const {digest} = await pushed(c, 'lab/src', 1000);
  t.true(await c.mountBlob('lab/dst', digest, 'lab/src'));
  t.is(await c.blobSize('lab/dst', digest), 1000);
  t.false(await c.mountBlob('lab/dst2', digest, 'lab/nothere'));
  t.is(await c.blobSize('lab/dst2', digest), undefined);
});

test('a blob cut mid-body is resumed with Range and still checked', async t => {
  const reg = await startRegistry(t);
  const {bytes, digest} = await pushed(client(reg.host), 'lab/app', 2_000_000);
  const proxy = await startFaultProxy(t, reg.host);
  proxy.add({method: 'GET', path: /\/blobs\/sha256:/, fault: {kind: 'cut', after: 700_000}});
  let last = 0;
  const got = await readAll(client(proxy.host).fetchBlob('lab/app', digest, {size: bytes.length, onBytes: n => { last = n; }}));
  t.is(sha256(got), sha256(bytes)); // not deepEqual: concordance takes seconds over megabytes
  t.is(last, bytes.length);
  const ranges = proxy.seen.filter(s => s.includes('Range') || s.includes('bytes='));
  t.is(ranges.length, 1);
  t.regex(ranges[0]!, /bytes=\d+-$/);
  const resumedAt = Number(/bytes=(\d+)-/.exec(ranges[0]!)![1]);
  t.true(resumedAt > 0 && resumedAt <= 700_000);
});

test('wrong bytes for a digest are refused', async t => {
  const reg = await startRegistry(t);
  const {bytes, digest} = await pushed(client(reg.host), 'lab/app', 100_000);
  const proxy = await startFaultProxy(t, reg.host);
  proxy.add({method: 'GET', path: /\/blobs\//, fault: {kind: 'corrupt'}});
  await t.throwsAsync(readAll(client(proxy.host).fetchBlob('lab/app', digest, {size: bytes.length})), {code: 'DIGEST_MISMATCH'});
});

test('a server that answers a resumed request with the whole blob is refused', async t => {
  const reg = await startRegistry(t);
  const {bytes, digest} = await pushed(client(reg.host), 'lab/app', 1_000_000);
  const proxy = await startFaultProxy(t, reg.host);
  proxy.add({method: 'GET', path: /\/blobs\//, fault: {kind: 'cut', after: 100_000}});
  proxy.add({method: 'GET', path: /\/blobs\//, fault: {kind: 'ignore-range'}});
  await t.throwsAsync(readAll(client(proxy.host).fetchBlob('lab/app', digest, {size: bytes.length})), {code: 'BAD_RESPONSE'});
});

test('503 and 429 answers are retried with backoff, then succeed', async t => {
  const reg = await startRegistry(t);
  const c = client(reg.host);
  const {digest} = await pushed(c, 'lab/app', 10);
  const proxy = await startFaultProxy(t, reg.host);
  proxy.add({method: 'HEAD', path: /\/blobs\//, fault: {kind: 'status', status: 503}, times: 2});
  proxy.add({method: 'HEAD', path: /\/blobs\//, fault: {kind: 'status', status: 429, headers: {'retry-after': '0'}}});
  t.is(await client(proxy.host).blobSize('lab/app', digest), 10);
  t.is(proxy.seen.filter(s => s.startsWith('HEAD')).length, 4);
});

test('retries end in a coded error', async t => {
  const reg = await startRegistry(t);
  const proxy = await startFaultProxy(t, reg.host);
  proxy.add({path: /\/blobs\//, fault: {kind: 'status', status: 500}, times: 100});
  const err = await t.throwsAsync(client(proxy.host).blobSize('lab/app', sha256('x')), {code: 'REGISTRY_ERROR'});
  t.is(err!.message.split('\n').length, 1);
  t.is(proxy.seen.filter(s => s.startsWith('HEAD')).length, FAST.retries + 1);
});

test('an upload whose connection drops starts a new session from a fresh stream', async t => {
  const reg = await startRegistry(t);
  const proxy = await startFaultProxy(t, reg.host);
  proxy.add({method: 'PATCH', path: /\/uploads\//, fault: {kind: 'drop'}});
  const bytes = randomBytes(50_000);
  let opened = 0;
  const {digest} = await client(proxy.host).pushBlob('lab/app', () => { opened++; return Readable.from([bytes]); });
  t.is(opened, 2);
  t.is(digest, sha256(bytes));
  t.is(await client(reg.host).blobSize('lab/app', digest), bytes.length);
});

test('an upload whose bytes differ from the promised digest is never closed', async t => {
  const reg = await startRegistry(t);
  const c = client(reg.host);
  await t.throwsAsync(c.pushBlob('lab/app', () => Readable.from([Buffer.from('real')]), {digest: sha256('promised')}), {code: 'DIGEST_MISMATCH'});
  t.is(await c.blobSize('lab/app', sha256('real')), undefined);
});

test('a plain-HTTP registry is refused unless TLS verification is turned off', async t => {
  const reg = await startRegistry(t);
  const err = await t.throwsAsync(new RegistryClient(reg.host, {retry: FAST}).ping(), {code: 'TLS_REQUIRED'});
  t.regex(err!.message, /--tls-verify=false/);
  t.is(await new RegistryClient(reg.host, {tlsVerify: false}).ping(), `http://${reg.host}`);
});

test('a registry that is not there is UNREACHABLE after retries', async t => {
  const reg = await startRegistry(t);
  await reg.stop();
  await t.throwsAsync(client(reg.host).blobSize('lab/app', sha256('x')), {code: 'UNREACHABLE'});
});
