import {type ChildProcess, spawn, spawnSync} from 'node:child_process';
import {createHash, randomBytes, randomUUID, sign} from 'node:crypto';
import {once} from 'node:events';
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/** What a test (or a benchmark) needs of a place to clean up: ava's `t.teardown`. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** One line of the registry's access log (combined log format). */
export interface AccessEntry {
  readonly method: string;
  /** The path without its query string. */
  readonly path: string;
  readonly query: string;
  readonly status: number;
  /** Bytes of the response body. */
  readonly bytes: number;
}

/** A docker-registry (distribution 2.8) serving on 127.0.0.1 from a temporary directory. */
export interface TestRegistry {
  /** `127.0.0.1:<port>`, the registry's host in references. */
  readonly host: string;
  readonly dir: string;
  /** Every request the registry answered so far, in order. */
  accessLog(): Promise<AccessEntry[]>;
  /** Stops the registry (it is also stopped at teardown). */
  stop(): Promise<void>;
  /** Starts it again on the same port and storage (after `stop`). */
  start(): Promise<void>;
}

export interface RegistryOptions {
  /** Put the registry behind a token server (`auth.token`) with this user and password. */
  readonly token?: {readonly username: string; readonly password: string};
  /** Put the registry behind Basic auth (`auth.htpasswd`) with this user and password. */
  readonly htpasswd?: {readonly username: string; readonly password: string};
}

/**
 * A free TCP port on 127.0.0.1 for a server that binds it later, outside the kernel's
 * ephemeral range: a port from that range, once released, can be taken by any process's next
 * outgoing connection before the server binds it (a CI run failed so). Chosen at random
 * above 10240 (fetch refuses some lower ports), and checked free by binding it.
 */
export async function freePort(): Promise<number> {
  const [low] = (await fs.readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '32768')).trim().split(/\s+/).map(Number);
  const top = low! > 12_000 ? low! : 32_768;
  for (;;) {
    const port = 10_240 + Math.floor(Math.random() * (top - 10_240));
    const server = net.createServer();
    const bound = await new Promise<boolean>(resolve => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!bound) continue;
    server.close();
    await once(server, 'close');
    return port;
  }
}

/**
 * Starts Debian's docker-registry on a free 127.0.0.1 port with a generated config and
 * temporary storage, waits until `/v2/` answers, and stops it by pid at teardown. With
 * `token`, it also starts a token server (ES256 JWTs signed by a certificate made here with
 * openssl) that gives the user every action asked for and anonymous callers `pull`. Fails
 * loudly when docker-registry or openssl is missing (scripts/setup.js installs them).
 */
export async function startRegistry(t: Teardown, options: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-registry-'));
  t.teardown(() => fs.rm(dir, {recursive: true, force: true}));
  let port = await freePort();
  let auth = '';
  if (options.token) {
    const tokens = await startTokenServer(t, dir, options.token);
    auth = `auth:\n  token:\n    realm: http://127.0.0.1:${tokens.port}/token\n    service: strata-test\n    issuer: strata-test-issuer\n    rootcertbundle: ${path.join(dir, 'cert.pem')}\n`;
  } else if (options.htpasswd) {
    const file = path.join(dir, 'htpasswd');
    await fs.writeFile(file, `${options.htpasswd.username}:${bcrypt(options.htpasswd.password)}\n`);
    auth = `auth:\n  htpasswd:\n    realm: strata-test\n    path: ${file}\n`;
  }
  const writeConfig = () => fs.writeFile(path.join(dir, 'config.yml'), [
    'version: 0.1',
    'log: {level: info, accesslog: {disabled: false}}',
    'storage:',
    `  filesystem: {rootdirectory: ${path.join(dir, 'data')}}`,
    '  delete: {enabled: true}',
    `http: {addr: 127.0.0.1:${port}}`,
    auth,
  ].join('\n'));
  const logFile = path.join(dir, 'log');
  let child: ChildProcess | undefined;
  const start = async () => {
    const log = await fs.open(logFile, 'a');
    const logStart = (await log.stat()).size;
    child = spawn('docker-registry', ['serve', path.join(dir, 'config.yml')], {stdio: ['ignore', log.fd, log.fd]});
    await log.close();
    const failed = new Promise<never>((_, reject) => {
      child!.once('error', err => reject(new Error(`docker-registry is not installed (scripts/setup.js installs it): ${err.message}`)));
      child!.once('exit', code => reject(new Error(`docker-registry exited ${code}: ${spawnSync('tail', ['-5', logFile], {encoding: 'utf8'}).stdout}`)));
    });
    failed.catch(() => {});
    await Promise.race([waitForHttp(`http://127.0.0.1:${port}/v2/`), failed]);
    // What answered may be another test's server that took the port: this registry's own
    // log says it bound it (or it exits, and `failed` says why).
    await Promise.race([waitForLog(logFile, logStart, `listening on 127.0.0.1:${port}`), failed]);
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = once(c, 'exit');
    process.kill(c.pid!, 'SIGTERM');
    await exited;
  };
  // Another process may bind the chosen port first; then the registry exits at once, and
  // a new port is chosen (the port is fixed from here on: `start` after `stop` reuses it).
  for (let attempt = 1; ; attempt++) {
    await writeConfig();
    try {
      await start();
      break;
    } catch (err) {
      if (attempt === 5 || !/address already in use/.test((err as Error).message)) throw err;
      port = await freePort();
    }
  }
  t.teardown(stop);
  return {
    host: `127.0.0.1:${port}`,
    dir,
    accessLog: async () => parseAccessLog(await fs.readFile(logFile, 'utf8')),
    stop,
    start,
  };
}

async function waitForHttp(url: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within 20 s`);
    await new Promise(r => setTimeout(r, 50));
  }
}

async function waitForLog(file: string, from: number, text: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await fs.readFile(file)).subarray(from).toString('utf8').includes(text)) {
    if (Date.now() > deadline) throw new Error(`${file} did not say "${text}" within 20 s`);
    await new Promise(r => setTimeout(r, 20));
  }
}

/** Combined log format: `host - - [date] "METHOD /path?q HTTP/1.1" status bytes "ref" "agent"`. */
export function parseAccessLog(text: string): AccessEntry[] {
  const out: AccessEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3}) (\d+|-)/.exec(line);
    if (!m) continue;
    const [p, q = ''] = m[2]!.split('?', 2) as [string, string?];
    out.push({method: m[1]!, path: p, query: q, status: Number(m[3]), bytes: m[4] === '-' ? 0 : Number(m[4])});
  }
  return out;
}

/**
 * The ~40-line token server of the research notes: a self-signed P-256 certificate made
 * with openssl, JWTs with `x5c`, `crypto.sign` in IEEE P1363 form. Basic credentials that
 * match get every action asked for; anonymous callers `pull`; wrong ones 401.
 */
async function startTokenServer(t: Teardown, dir: string, user: {username: string; password: string}): Promise<{port: number}> {
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, {encoding: 'utf8'});
    if (r.error) throw new Error(`openssl is not installed: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
  };
  run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  run(['req', '-new', '-x509', '-key', key, '-out', cert, '-days', '2', '-subj', '/CN=strata-test-token']);
  const keyPem = await fs.readFile(key, 'utf8');
  const der = Buffer.from((await fs.readFile(cert, 'utf8')).replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const good = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const authz = req.headers.authorization;
    if (authz !== undefined && authz !== good) {
      res.writeHead(401, {'content-type': 'application/json'}).end('{"details":"wrong credentials"}');
      return;
    }
    const access = url.searchParams.getAll('scope').map(s => {
      const [type, ...rest] = s.split(':');
      const actions = rest.pop()!.split(',');
      return {type, name: rest.join(':'), actions: authz ? actions : actions.filter(a => a === 'pull')};
    });
    const now = Math.floor(Date.now() / 1000);
    const claims = {iss: 'strata-test-issuer', sub: authz ? user.username : '', aud: url.searchParams.get('service'), exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access};
    const body = `${b64({typ: 'JWT', alg: 'ES256', x5c: [der.toString('base64')]})}.${b64(claims)}`;
    const signature = sign('sha256', Buffer.from(body), {key: keyPem, dsaEncoding: 'ieee-p1363'}).toString('base64url');
    res.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify({token: `${body}.${signature}`, expires_in: 300}));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise(r => server.close(r)));
  return {port: (server.address() as net.AddressInfo).port};
}

/**
 * A bcrypt hash (the only form distribution's htpasswd reads), by the C library's crypt(3)
 * through Perl (perl-base is essential in Debian; libxcrypt does `$2b$`). Cost 5: a test's
 * every request checks it.
 */
function bcrypt(password: string): string {
  const salt = randomBytes(16).toString('base64').replace(/[^A-Za-z0-9]/g, '.').slice(0, 22);
  const r = spawnSync('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, `$2b$05$${salt}`], {encoding: 'utf8'});
  if (r.error) throw new Error(`perl is not installed: ${r.error.message}`);
  if (r.status !== 0 || !r.stdout.startsWith('$2b$')) throw new Error(`this C library's crypt(3) has no bcrypt: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** sha256 of bytes as a descriptor digest. */
export function sha256(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}
