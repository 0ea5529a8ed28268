import {spawn} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {RegistryError} from './errors.js';

/** A user name and password, or an OAuth2 refresh token (`identitytoken`). */
export type Credentials =
  | {readonly username: string; readonly password: string}
  | {readonly identityToken: string};

/** Where credentials are looked up: the environment and home directory to use (tests pass their own). */
export interface CredentialSources {
  /** `--authfile`: the only file read and written when given. */
  readonly authfile?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly home?: string;
  readonly uid?: number;
}

interface AuthFile {
  auths?: Record<string, {auth?: string; identitytoken?: string; username?: string; password?: string}>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** Docker writes Docker Hub's credentials under its old API URL. */
const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

/**
 * The auth files in the order containers-auth.json(5) reads them: `--authfile` or
 * `$REGISTRY_AUTH_FILE` alone when given; else `$XDG_RUNTIME_DIR/containers/auth.json`
 * (`/run/containers/<uid>/auth.json` without it), `$XDG_CONFIG_HOME/containers/auth.json`,
 * `~/.docker/config.json`, `~/.dockercfg` (legacy: the `auths` object itself). The first
 * is where `login` writes.
 */
export function authFilePaths(sources: CredentialSources = {}): {file: string; legacy: boolean}[] {
  const env = sources.env ?? process.env;
  const only = sources.authfile ?? env.REGISTRY_AUTH_FILE;
  if (only) return [{file: only, legacy: false}];
  const home = sources.home ?? env.HOME ?? '/';
  const runtime = env.XDG_RUNTIME_DIR ? path.join(env.XDG_RUNTIME_DIR, 'containers') : `/run/containers/${sources.uid ?? process.getuid?.() ?? 0}`;
  const config = env.XDG_CONFIG_HOME || path.join(home, '.config');
  return [
    {file: path.join(runtime, 'auth.json'), legacy: false},
    {file: path.join(config, 'containers', 'auth.json'), legacy: false},
    {file: path.join(env.DOCKER_CONFIG || path.join(home, '.docker'), 'config.json'), legacy: false},
    {file: path.join(home, '.dockercfg'), legacy: true},
  ];
}

/**
 * The credentials for `registry` (`host[:port]`) and repository `repo` (path inside it):
 * per file, in `authFilePaths` order, a `credHelpers` entry for the registry, then the
 * `auths` key of the longest matching namespace (`reg/ns/app`, `reg/ns`, `reg`), then keys
 * written as URLs (`https://reg/v1/`), then `credsStore`. Undefined when none has any.
 * Throws BAD_AUTHFILE, CREDENTIAL_HELPER.
 */
export async function lookupCredentials(registry: string, repo: string, sources: CredentialSources = {}): Promise<Credentials | undefined> {
  for (const {file, legacy} of authFilePaths(sources)) {
    const parsed = await readAuthFile(file, legacy);
    if (!parsed) continue;
    const helper = parsed.credHelpers?.[registry];
    if (helper) return helperGet(helper, registry, sources);
    const auths = parsed.auths ?? {};
    const keys = legacy ? [registry] : namespaceKeys(registry, repo);
    for (const key of keys) if (auths[key]) return decodeAuth(auths[key]!, file, key);
    for (const [key, value] of Object.entries(auths)) if (normalizeKey(key) === registry) return decodeAuth(value, file, key);
    if (parsed.credsStore) {
      const found = await helperGet(parsed.credsStore, registry, sources);
      if (found) return found;
    }
  }
  return undefined;
}

/** `reg/ns/app` -> [`reg/ns/app`, `reg/ns`, `reg`]: the longest namespace first. */
function namespaceKeys(registry: string, repo: string): string[] {
  const parts = repo === '' ? [] : repo.split('/');
  const keys: string[] = [];
  for (let n = parts.length; n >= 1; n--) keys.push(`${registry}/${parts.slice(0, n).join('/')}`);
  keys.push(registry);
  return keys;
}

/** A key written as a URL (`https://host/v1/`, as docker login once did) down to its host. */
function normalizeKey(key: string): string {
  if (key === DOCKER_HUB_KEY || key === 'index.docker.io') return 'docker.io';
  const host = key.replace(/^https?:\/\//, '').split('/')[0]!;
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}

async function readAuthFile(file: string, legacy: boolean): Promise<AuthFile | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new RegistryError('BAD_AUTHFILE', `auth file ${file} cannot be read (${code ?? (err as Error).message})`, {cause: err});
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new RegistryError('BAD_AUTHFILE', `auth file ${file} is not valid JSON`, {cause: err});
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new RegistryError('BAD_AUTHFILE', `auth file ${file} is not a JSON object`);
  return legacy ? {auths: v as AuthFile['auths']} : (v as AuthFile);
}

function decodeAuth(entry: NonNullable<AuthFile['auths']>[string], file: string, key: string): Credentials | undefined {
  if (entry.identitytoken) return {identityToken: entry.identitytoken};
  if (entry.username !== undefined && entry.password !== undefined) return {username: entry.username, password: entry.password};
  if (!entry.auth) return undefined;
  const text = Buffer.from(entry.auth, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) throw new RegistryError('BAD_AUTHFILE', `auth file ${file}: the "auth" of ${key} is not base64 of user:password`);
  return {username: text.slice(0, colon), password: text.slice(colon + 1)};
}

/**
 * Asks `docker-credential-<name> get` (the docker credential helper protocol: the server
 * on stdin, `{"ServerURL","Username","Secret"}` on stdout; user `<token>` means an identity
 * token). Undefined when the helper has nothing for the server.
 */
async function helperGet(name: string, registry: string, sources: CredentialSources): Promise<Credentials | undefined> {
  const {code, stdout, stderr, error} = await runHelper(name, 'get', registry, sources);
  if (error) throw new RegistryError('CREDENTIAL_HELPER', `credential helper docker-credential-${name} cannot be run (${error.message}); install it or remove it from the auth file`, {cause: error});
  if (code !== 0) {
    if (/credentials not found/i.test(stdout + stderr)) return undefined; // the helper's "not found"
    throw new RegistryError('CREDENTIAL_HELPER', `credential helper docker-credential-${name} failed for ${registry}: ${(stderr || stdout).trim().split('\n')[0]}`);
  }
  let v: {Username?: unknown; Secret?: unknown};
  try {
    v = JSON.parse(stdout) as typeof v;
  } catch (err) {
    throw new RegistryError('CREDENTIAL_HELPER', `credential helper docker-credential-${name} answered something that is not JSON`, {cause: err});
  }
  if (typeof v.Username !== 'string' || typeof v.Secret !== 'string')
    throw new RegistryError('CREDENTIAL_HELPER', `credential helper docker-credential-${name} answered without Username and Secret`);
  return v.Username === '<token>' ? {identityToken: v.Secret} : {username: v.Username, password: v.Secret};
}

function runHelper(name: string, verb: string, input: string, sources: CredentialSources): Promise<{code: number; stdout: string; stderr: string; error?: Error}> {
  return new Promise(resolve => {
    const child = spawn(`docker-credential-${name}`, [verb], {env: sources.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe']});
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', d => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', d => { stderr += d; });
    child.on('error', error => resolve({code: -1, stdout, stderr, error}));
    child.on('close', code => resolve({code: code ?? -1, stdout, stderr}));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/**
 * Stores a user name and password for `registry` in the first auth file (`login`), as
 * `{"auths": {"<registry>": {"auth": base64("user:pass")}}}`, written atomically, mode 0600.
 * Returns the file. Throws BAD_AUTHFILE.
 */
export async function storeCredentials(registry: string, creds: {username: string; password: string}, sources: CredentialSources = {}): Promise<string> {
  const {file} = authFilePaths(sources)[0]!;
  const parsed = (await readAuthFile(file, false)) ?? {};
  parsed.auths = {...parsed.auths, [registry]: {auth: Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64')}};
  await writeAuthFile(file, parsed);
  return file;
}

/**
 * Removes the stored credentials of `registry` from every auth file that has them
 * (`logout`). Returns the files changed. Throws NOT_LOGGED_IN when none had any, BAD_AUTHFILE.
 */
export async function removeCredentials(registry: string, sources: CredentialSources = {}): Promise<string[]> {
  const changed: string[] = [];
  for (const {file, legacy} of authFilePaths(sources)) {
    if (legacy) continue;
    const parsed = await readAuthFile(file, false);
    const keys = Object.keys(parsed?.auths ?? {}).filter(k => k === registry || normalizeKey(k) === registry);
    if (!parsed || keys.length === 0) continue;
    for (const k of keys) delete parsed.auths![k];
    await writeAuthFile(file, parsed);
    changed.push(file);
  }
  if (changed.length === 0) throw new RegistryError('NOT_LOGGED_IN', `not logged in to ${registry}`);
  return changed;
}

async function writeAuthFile(file: string, content: AuthFile): Promise<void> {
  await fs.mkdir(path.dirname(file), {recursive: true, mode: 0o700});
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await fs.writeFile(tmp, `${JSON.stringify(content, null, '\t')}\n`, {mode: 0o600, flag: 'wx'});
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, {force: true});
    throw new RegistryError('BAD_AUTHFILE', `auth file ${file} cannot be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {cause: err});
  }
}

/** The registry key an auth file uses for a domain: docker.io for Docker Hub, else the domain. */
export function authKeyOf(domain: string): string {
  return normalizeKey(domain);
}
