import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {authFilePaths, lookupCredentials, removeCredentials, storeCredentials} from '../src/index.js';

async function home(t: ExecutionContext): Promise<{home: string; env: NodeJS.ProcessEnv}> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-auth-'));
  t.teardown(() => fs.rm(dir, {recursive: true, force: true}));
  return {home: dir, env: {HOME: dir, XDG_RUNTIME_DIR: path.join(dir, 'run'), PATH: `${path.join(dir, 'bin')}:${process.env.PATH}`}};
}

async function write(file: string, v: unknown): Promise<void> {
  await fs.mkdir(path.dirname(file), {recursive: true});
  await fs.writeFile(file, typeof v === 'string' ? v : JSON.stringify(v));
}

const auth = (u: string, p: string) => ({auth: Buffer.from(`${u}:${p}`).toString('base64')});

test('auth files are read in containers-auth.json order, the first that has the registry wins', async t => {
  const h = await home(t);
  const [runtime, config, docker] = authFilePaths(h).map(p => p.file);
  t.is(runtime, path.join(h.home, 'run', 'containers', 'auth.json'));
  await write(docker!, {auths: {'reg.test': auth('docker', 'd'), 'other.test': auth('o', 'o')}});
  await write(config!, {auths: {'reg.test': auth('config', 'c')}});
  t.deepEqual(await lookupCredentials('reg.test', 'app', h), {username: 'config', password: 'c'});
  await write(runtime!, {auths: {'reg.test': auth('runtime', 'r')}});
  t.deepEqual(await lookupCredentials('reg.test', 'app', h), {username: 'runtime', password: 'r'});
  t.deepEqual(await lookupCredentials('other.test', 'app', h), {username: 'o', password: 'o'});
  t.is(await lookupCredentials('none.test', 'app', h), undefined);
});

test('--authfile and REGISTRY_AUTH_FILE replace the search', async t => {
  const h = await home(t);
  await write(authFilePaths(h)[0]!.file, {auths: {'reg.test': auth('runtime', 'r')}});
  const only = path.join(h.home, 'only.json');
  await write(only, {auths: {'reg.test': auth('only', 'x')}});
  t.deepEqual(await lookupCredentials('reg.test', 'a', {...h, authfile: only}), {username: 'only', password: 'x'});
  t.deepEqual(await lookupCredentials('reg.test', 'a', {...h, env: {...h.env, REGISTRY_AUTH_FILE: only}}), {username: 'only', password: 'x'});
});

test('the longest namespace key wins, and URL keys name their host', async t => {
  const h = await home(t);
  await write(authFilePaths(h)[1]!.file, {auths: {
    'reg.test': auth('host', '1'), 'reg.test/team': auth('team', '2'), 'reg.test/team/app': auth('app', '3'),
    'https://index.docker.io/v1/': auth('hub', '4'),
  }});
  t.deepEqual(await lookupCredentials('reg.test', 'team/app', h), {username: 'app', password: '3'});
  t.deepEqual(await lookupCredentials('reg.test', 'team/other', h), {username: 'team', password: '2'});
  t.deepEqual(await lookupCredentials('reg.test', 'solo', h), {username: 'host', password: '1'});
  t.deepEqual(await lookupCredentials('docker.io', 'library/alpine', h), {username: 'hub', password: '4'});
});

test('a credential helper is asked with the registry on stdin', async t => {
  const h = await home(t);
  const log = path.join(h.home, 'helper.log');
  await write(path.join(h.home, 'bin', 'docker-credential-stratatest'),
    `#!/bin/sh\nread server\necho "$1 $server" >> ${log}\nif [ "$server" = "reg.test" ]; then echo '{"ServerURL":"reg.test","Username":"helped","Secret":"s3"}'; else echo "credentials not found in native keychain"; exit 1; fi\n`);
  await fs.chmod(path.join(h.home, 'bin', 'docker-credential-stratatest'), 0o755);
  const docker = authFilePaths(h)[2]!.file;
  await write(docker, {credHelpers: {'reg.test': 'stratatest'}, credsStore: 'stratatest', auths: {}});
  t.deepEqual(await lookupCredentials('reg.test', 'app', h), {username: 'helped', password: 's3'});
  t.is(await lookupCredentials('else.test', 'app', h), undefined);
  t.is(await fs.readFile(log, 'utf8'), 'get reg.test\nget else.test\n');
});

test('a missing credential helper is a coded error naming it', async t => {
  const h = await home(t);
  await write(authFilePaths(h)[2]!.file, {credHelpers: {'reg.test': 'nosuchhelper'}});
  const err = await t.throwsAsync(lookupCredentials('reg.test', 'app', h), {code: 'CREDENTIAL_HELPER'});
  t.regex(err!.message, /docker-credential-nosuchhelper/);
});

test('a malformed auth file is BAD_AUTHFILE', async t => {
  const h = await home(t);
  await write(authFilePaths(h)[0]!.file, '{not json');
  await t.throwsAsync(lookupCredentials('reg.test', 'app', h), {code: 'BAD_AUTHFILE'});
});

test('login writes the first auth file (0600) and logout removes the entry', async t => {
  const h = await home(t);
  const file = await storeCredentials('reg.test', {username: 'u', password: 'p:w'}, h);
  t.is(file, authFilePaths(h)[0]!.file);
  t.is((await fs.stat(file)).mode & 0o777, 0o600);
  t.deepEqual(await lookupCredentials('reg.test', 'x', h), {username: 'u', password: 'p:w'});
  await storeCredentials('two.test', {username: 'v', password: 'q'}, h);
  t.deepEqual(await removeCredentials('reg.test', h), [file]);
  t.is(await lookupCredentials('reg.test', 'x', h), undefined);
  t.deepEqual(await lookupCredentials('two.test', 'x', h), {username: 'v', password: 'q'});
  await t.throwsAsync(removeCredentials('reg.test', h), {code: 'NOT_LOGGED_IN'});
});
