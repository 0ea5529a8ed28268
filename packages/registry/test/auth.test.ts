import {randomBytes} from 'node:crypto';
import {Readable} from 'node:stream';
import test from 'ava';
import {RegistryClient} from '../src/index.js';
import {sha256, startRegistry} from './_registry.js';

const USER = {username: 'strata', password: 'secret'};
const FAST = {retries: 2, baseMs: 5, minMs: 5, maxMs: 20};

test('a token registry: the user pushes and mounts, one token per scope set, anonymous pulls only', async t => {
  const reg = await startRegistry(t, {token: USER});
  const c = new RegistryClient(reg.host, {tlsVerify: false, credentials: USER, retry: FAST});
  const bytes = randomBytes(20_000);
  const {digest} = await c.pushBlob('lab/app', () => Readable.from([bytes]));
  t.is(await c.blobSize('lab/app', digest), bytes.length);
  t.true(await c.mountBlob('lab/copy', digest, 'lab/app'));
  // Parallel requests share one token fetch.
  await Promise.all([1, 2, 3].map(() => c.blobSize('lab/copy', digest)));
  const anon = new RegistryClient(reg.host, {tlsVerify: false, retry: FAST});
  t.is(await anon.blobSize('lab/app', digest), bytes.length);
  const err = await t.throwsAsync(anon.pushBlob('lab/app', () => Readable.from([Buffer.from('x')])), {code: 'UNAUTHORIZED'});
  t.regex(err!.message, /--creds|strata login/);
  t.is(sha256(bytes), digest);
  const unauthorized = (await reg.accessLog()).filter(e => e.status === 401 && e.path !== '/v2/').length;
  // One 401 per first use of a scope set; the cached token serves the rest.
  t.true(unauthorized <= 4, `${unauthorized} 401 answers`);
});

test('a wrong password is one line naming the user', async t => {
  const reg = await startRegistry(t, {token: USER});
  const c = new RegistryClient(reg.host, {tlsVerify: false, credentials: {username: 'strata', password: 'wrong'}, retry: FAST});
  const err = await t.throwsAsync(c.blobSize('lab/app', sha256('x')), {code: 'UNAUTHORIZED'});
  t.is(err!.message, `${reg.host} refused the credentials of strata (the token server answered 401)`);
});

test('credentials are looked up lazily, once', async t => {
  const reg = await startRegistry(t, {token: USER});
  let asked = 0;
  const c = new RegistryClient(reg.host, {tlsVerify: false, retry: FAST, credentials: async () => { asked++; return USER; }});
  await c.pushBlob('lab/app', () => Readable.from([Buffer.from('one')]));
  await c.pushBlob('lab/app', () => Readable.from([Buffer.from('two')]));
  t.is(asked, 1);
});

test('a Basic-auth registry: the user pushes and reads back, a wrong password and no credentials are refused', async t => {
  const reg = await startRegistry(t, {htpasswd: USER});
  const c = new RegistryClient(reg.host, {tlsVerify: false, credentials: USER, retry: FAST});
  await c.checkCredentials();
  const bytes = randomBytes(20_000);
  const {digest} = await c.pushBlob('lab/app', () => Readable.from([bytes]));
  t.is(await c.blobSize('lab/app', digest), bytes.length);
  // After the ping's challenge, every request of the user's carried the credentials.
  t.deepEqual((await reg.accessLog()).filter(e => e.status === 401 && e.path !== '/v2/'), []);
  const wrong = new RegistryClient(reg.host, {tlsVerify: false, credentials: {username: 'strata', password: 'wrong'}, retry: FAST});
  const err = await t.throwsAsync(wrong.checkCredentials(), {code: 'UNAUTHORIZED'});
  t.is(err!.message, `${reg.host} refused the credentials of strata (GET /v2/ answered 401)`);
  const anon = new RegistryClient(reg.host, {tlsVerify: false, retry: FAST});
  await t.throwsAsync(anon.blobSize('lab/app', digest), {code: 'UNAUTHORIZED'});
});
