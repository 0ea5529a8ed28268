import {createHash} from 'node:crypto';
import {Readable} from 'node:stream';
import {Authenticator} from './Authenticator.js';
import type {Credentials} from './credentials.js';
import {RegistryError, type RegistryErrorCode} from './errors.js';
import {MANIFEST_ACCEPT} from './mediaTypes.js';
import {DOCKER_HUB} from './reference.js';
import {DEFAULT_RETRY, type RetryPolicy, backoffMs, isNetworkError, isRetriableStatus, networkCode, sleep} from './retry.js';

export interface RegistryClientOptions {
  /** Verify the registry's TLS certificate (the default). false: also accept plain HTTP and self-signed HTTPS, as skopeo's --tls-verify=false. */
  readonly tlsVerify?: boolean;
  readonly credentials?: Credentials | (() => Promise<Credentials | undefined>);
  readonly retry?: Partial<RetryPolicy>;
  readonly userAgent?: string;
}

/** A manifest or index as the registry holds it: its exact bytes, their digest and media type. */
export interface Manifest {
  readonly bytes: Buffer;
  readonly digest: string;
  readonly mediaType: string;
}

export interface BlobReadOptions {
  /** The size the descriptor declares: more bytes are refused as they come, fewer at the end. */
  readonly size?: number;
  /** Called with the bytes received so far (across resumed connections). */
  readonly onBytes?: (received: number) => void;
}

export interface BlobUploadOptions {
  /** The digest the bytes must have; refused (DIGEST_MISMATCH) before the upload closes if they do not. */
  readonly digest?: string;
  readonly onBytes?: (sent: number) => void;
}

/** Manifests and indexes are small; a bigger answer is refused rather than read into memory. */
export const MANIFEST_MAX = 16 * 1024 * 1024;

interface RequestSpec {
  readonly scopes: readonly string[];
  readonly headers?: Record<string, string>;
  readonly body?: Buffer;
  /** Statuses that are an answer; any other is an error (after retries for 429/5xx). */
  readonly ok: readonly number[];
  /** What the request is about, for messages: `manifest team/app:1`. */
  readonly what: string;
  /** Send the request as it is: no retries (a request whose failure the caller handles). */
  readonly once?: boolean;
}

/**
 * A client of one registry's distribution API (OCI distribution-spec `spec.md`) over Node's
 * built-in fetch: ping, Bearer/Basic auth (Authenticator), retries with backoff on
 * 429/5xx and dropped connections, blobs (HEAD, GET verified while streaming and resumed
 * with Range, cross-repository mount, streamed upload as POST + one PATCH + PUT) and
 * manifests (GET with every Accept type, checked against their digest; PUT).
 *
 * HTTPS always, unless `tlsVerify: false`: then a registry that does not speak TLS is
 * spoken to in plain HTTP, and a self-signed certificate is accepted. Without it, a
 * plain-HTTP registry is an error (TLS_REQUIRED) that says how to allow it; strata never
 * falls back silently. It knows nothing of strata's store: callers give bytes and streams.
 */
export class RegistryClient {
  readonly domain: string;
  private readonly host: string;
  private readonly tlsVerify: boolean;
  private readonly policy: RetryPolicy;
  private readonly auth: Authenticator;
  private readonly userAgent: string;
  private base: Promise<string> | undefined;
  private dispatcher: object | undefined;

  constructor(domain: string, options: RegistryClientOptions = {}) {
    this.domain = domain;
    // Docker Hub's API lives on another host than its name (docker's `IndexServer`).
    this.host = domain === DOCKER_HUB ? 'registry-1.docker.io' : domain;
    this.tlsVerify = options.tlsVerify ?? true;
    this.policy = {...DEFAULT_RETRY, ...options.retry};
    this.userAgent = options.userAgent ?? 'strata';
    this.auth = new Authenticator(domain, options.credentials, (url, init) => this.send(url, init, 'the token server'));
  }

  /**
   * `GET /v2/`: finds the scheme (see the class comment) and learns the auth challenge.
   * Throws UNREACHABLE, TLS_REQUIRED, REGISTRY_ERROR.
   */
  ping(): Promise<string> {
    this.base ??= this.findBase();
    this.base.catch(() => { this.base = undefined; }); // a failed ping is tried again by the next call
    return this.base;
  }

  private async findBase(): Promise<string> {
    const https = `https://${this.host}`;
    if (this.tlsVerify) {
      try {
        await this.pingAt(https);
      } catch (err) {
        if (networkCode(err) === 'ERR_SSL_WRONG_VERSION_NUMBER' || networkCode(err) === 'ERR_SSL_PACKET_LENGTH_TOO_LONG')
          throw new RegistryError('TLS_REQUIRED', `${this.domain} answered in plain HTTP, not HTTPS; pass --tls-verify=false to allow plain HTTP for it`, {cause: err});
        throw err;
      }
      return https;
    }
    this.dispatcher = await insecureDispatcher();
    try {
      await this.pingAt(https);
      return https;
    } catch (err) {
      if (err instanceof RegistryError && err.code !== 'UNREACHABLE') throw err;
      const http = `http://${this.host}`;
      await this.pingAt(http);
      return http;
    }
  }

  private async pingAt(base: string): Promise<void> {
    const res = await this.send(`${base}/v2/`, {method: 'GET'}, `${this.domain}`);
    await res.body?.cancel();
    if (res.status === 401) {
      this.auth.learn(res.headers.get('www-authenticate'));
      return;
    }
    if (!res.ok) throw new RegistryError('REGISTRY_ERROR', `${this.domain} is not an OCI registry (GET /v2/ answered ${res.status})`, {status: res.status});
  }

  /**
   * One registry request with auth and retries: a 401 is answered once with a fresh token
   * (or the challenge it carries), 429/5xx and dropped connections are retried with backoff.
   * Returns the response when its status is in `spec.ok`; throws a coded error otherwise.
   */
  private async request(method: string, pathOrUrl: string, spec: RequestSpec): Promise<Response> {
    const base = await this.ping();
    const url = /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : `${base}${pathOrUrl}`;
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = {...spec.headers};
      const authorization = await this.auth.header(spec.scopes, refreshed);
      if (authorization) headers.Authorization = authorization;
      let res: Response;
      try {
        res = await this.send(url, {method, headers, ...(spec.body ? {body: spec.body as unknown as BodyInit} : {})}, this.domain, true);
      } catch (err) {
        if (!spec.once && isNetworkError(err) && attempt < this.policy.retries) {
          await sleep(backoffMs(this.policy, attempt));
          continue;
        }
        throw unreachable(this.domain, err);
      }
      if (spec.ok.includes(res.status)) return res;
      if (res.status === 401 && !refreshed) {
        const learnt = this.auth.learn(res.headers.get('www-authenticate'));
        await res.body?.cancel();
        if (learnt) {
          refreshed = true;
          continue;
        }
      }
      if (!spec.once && isRetriableStatus(res.status) && attempt < this.policy.retries) {
        await res.body?.cancel();
        await sleep(backoffMs(this.policy, attempt, res.headers.get('retry-after')));
        continue;
      }
      throw await this.errorOf(res, method, spec.what);
    }
  }

  /** fetch with this client's dispatcher and User-Agent; network failures become UNREACHABLE unless `raw`. */
  private async send(url: string, init: RequestInit, who: string, raw = false): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('User-Agent', this.userAgent);
    const options = {...init, headers, redirect: 'follow', ...(this.dispatcher ? {dispatcher: this.dispatcher} : {})} as RequestInit;
    try {
      return await fetch(url, options);
    } catch (err) {
      if (raw) throw err;
      throw unreachable(who, err);
    }
  }

  /** The coded error for an error answer, from the distribution error body (`{"errors": [{code, message}]}`). */
  private async errorOf(res: Response, method: string, what: string): Promise<RegistryError> {
    let detail = '';
    let regCode: string | undefined;
    try {
      const text = (await res.text()).slice(0, 4096);
      const body = JSON.parse(text) as {errors?: {code?: string; message?: string}[]};
      const first = body.errors?.[0];
      regCode = first?.code;
      detail = [first?.code, first?.message].filter(Boolean).join(': ');
    } catch {
      // not a distribution error body: the status says enough
    }
    const code: RegistryErrorCode =
      res.status === 401 ? 'UNAUTHORIZED'
        : res.status === 403 ? 'DENIED'
          : regCode === 'MANIFEST_UNKNOWN' ? 'MANIFEST_UNKNOWN'
            : regCode === 'BLOB_UNKNOWN' || regCode === 'MANIFEST_BLOB_UNKNOWN' ? 'BLOB_UNKNOWN'
              : regCode === 'NAME_UNKNOWN' ? 'NAME_UNKNOWN'
                : res.status === 404 && method !== 'PUT' && /^manifest/.test(what) ? 'MANIFEST_UNKNOWN'
                  : res.status === 404 && /^blob/.test(what) ? 'BLOB_UNKNOWN'
                    : 'REGISTRY_ERROR';
    let message = `${this.domain}: ${method} ${what} answered ${res.status}${detail ? ` (${detail})` : ''}`;
    if (code === 'UNAUTHORIZED') {
      const who = await this.auth.who();
      if (who && this.auth.basic) message = `${this.domain} refused the credentials of ${who} (${method} ${what} answered ${res.status})`;
      else message += who ? `; the credentials of ${who} are not enough` : `; give --creds USER:PASS or run "strata login ${this.domain}"`;
    }
    return new RegistryError(code, message, {status: res.status});
  }

  /**
   * Checks the credentials as `docker login` does: a token for no scope (Bearer) or
   * `GET /v2/` with them (Basic). Throws UNAUTHORIZED when they are refused.
   */
  async checkCredentials(): Promise<void> {
    await this.ping();
    if (!this.auth.required) return; // a registry that asks for nothing accepts anyone
    const res = await this.request('GET', '/v2/', {scopes: [], ok: [200], what: '/v2/'});
    await res.body?.cancel();
  }

  // ---- blobs -------------------------------------------------------------------------

  /** `HEAD` a blob: its size when the repository has it, undefined when not (404). */
  async blobSize(repo: string, digest: string): Promise<number | undefined> {
    const res = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, {scopes: [pull(repo)], ok: [200, 404], what: `blob ${repo}@${digest}`});
    if (res.status === 404) return undefined;
    return Number(res.headers.get('content-length') ?? NaN);
  }

  /**
   * A blob's bytes as a stream, checked as they come: never more than `size`, and at the
   * end exactly `size` bytes hashing to `digest` (sha256), else the stream fails with
   * DIGEST_MISMATCH. A connection that drops mid-body is resumed with `Range:
   * bytes=<received>-` (backing off; the count of tries restarts whenever bytes arrived);
   * a server that answers a Range request with the whole blob is refused (BAD_RESPONSE).
   */
  fetchBlob(repo: string, digest: string, options: BlobReadOptions = {}): Readable {
    const algorithm = digest.slice(0, digest.indexOf(':'));
    if (algorithm !== 'sha256' && algorithm !== 'sha512') throw new RegistryError('BAD_REFERENCE', `blob digest ${digest} is not sha256 or sha512`);
    const what = `blob ${repo}@${digest}`;
    const self = this;
    async function* chunks(): AsyncGenerator<Buffer> {
      const hash = createHash(algorithm);
      let received = 0;
      let failures = 0;
      let res = await self.request('GET', `/v2/${repo}/blobs/${digest}`, {scopes: [pull(repo)], ok: [200], what});
      for (;;) {
        const before = received;
        try {
          if (!res.body) break;
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
            if (options.size !== undefined && received + buf.length > options.size)
              throw new RegistryError('DIGEST_MISMATCH', `${what} is longer than the ${options.size} bytes its descriptor declares`);
            hash.update(buf);
            received += buf.length;
            options.onBytes?.(received);
            yield buf;
          }
          break;
        } catch (err) {
          if (err instanceof RegistryError || !isNetworkError(err)) throw err;
          if (received > before) failures = 0;
          if (failures >= self.policy.retries) throw unreachable(self.domain, err, `${what} after ${received} bytes`);
          await sleep(backoffMs(self.policy, failures++));
          res = await self.request('GET', `/v2/${repo}/blobs/${digest}`, {scopes: [pull(repo)], headers: {Range: `bytes=${received}-`}, ok: [200, 206], what});
          if (res.status === 200 && received > 0) {
            await res.body?.cancel();
            throw new RegistryError('BAD_RESPONSE', `${self.domain} answered the whole of ${what} to a request for its bytes from ${received} on; it cannot be resumed`);
          }
          const range = res.headers.get('content-range');
          if (res.status === 206 && !range?.startsWith(`bytes ${received}-`)) {
            await res.body?.cancel();
            throw new RegistryError('BAD_RESPONSE', `${self.domain} answered bytes "${range}" of ${what} to a request for bytes ${received}-`);
          }
        }
      }
      if (options.size !== undefined && received !== options.size)
        throw new RegistryError('DIGEST_MISMATCH', `${what} ended after ${received} bytes; its descriptor declares ${options.size}`);
      const got = `${algorithm}:${hash.digest('hex')}`;
      if (got !== digest) throw new RegistryError('DIGEST_MISMATCH', `${what} arrived with bytes that hash to ${got}`);
    }
    return Readable.from(chunks(), {objectMode: false});
  }

  /**
   * Cross-repository mount (`POST …/uploads/?mount=<digest>&from=<repo>`): true when the
   * registry linked the blob (201). Any other answer (202: an upload session it opened
   * instead, 401/403/404 as Harbor gives for a source it will not read) is false, and the
   * caller uploads.
   */
  async mountBlob(repo: string, digest: string, from: string): Promise<boolean> {
    const query = new URLSearchParams({mount: digest, from});
    let res: Response;
    try {
      res = await this.request('POST', `/v2/${repo}/blobs/uploads/?${query}`, {scopes: [pushPull(repo), pull(from)], ok: [201, 202], what: `mount of ${digest} from ${from} into ${repo}`, headers: {'Content-Length': '0'}});
    } catch (err) {
      if (err instanceof RegistryError && ['UNAUTHORIZED', 'DENIED', 'NAME_UNKNOWN', 'BLOB_UNKNOWN', 'REGISTRY_ERROR'].includes(err.code) && err.status !== undefined && err.status < 500) return false;
      throw err;
    }
    await res.body?.cancel();
    if (res.status === 201) return true;
    const location = res.headers.get('location');
    if (location) await this.send(await this.resolve(location), {method: 'DELETE', headers: await this.authHeaders([pushPull(repo)])}, this.domain).then(r => r.body?.cancel(), () => {}); // close the session it opened
    return false;
  }

  /**
   * Uploads a blob streamed from `open()` (POST, one PATCH carrying the whole stream,
   * PUT `?digest=`: the form docker and containers/image use), hashing it on the way, and
   * returns its digest and size. A dropped connection or 5xx starts a new session with a
   * fresh stream from `open()`, so `open` must give the same bytes each time. Throws
   * DIGEST_MISMATCH when `options.digest` is given and the bytes differ (the session is
   * not closed, so the registry never stores them).
   */
  async pushBlob(repo: string, open: () => Readable | Promise<Readable>, options: BlobUploadOptions = {}): Promise<{digest: string; size: number}> {
    const what = `upload to ${repo}`;
    for (let attempt = 0; ; attempt++) {
      try {
        const start = await this.request('POST', `/v2/${repo}/blobs/uploads/`, {scopes: [pushPull(repo)], ok: [202], what, headers: {'Content-Length': '0'}});
        await start.body?.cancel();
        let location = await this.resolve(start.headers.get('location'));
        const hash = createHash('sha256');
        let size = 0;
        const source = await open();
        const body = (async function* () {
          for await (const chunk of source as AsyncIterable<Buffer>) {
            hash.update(chunk);
            size += chunk.length;
            options.onBytes?.(size);
            yield chunk;
          }
        })();
        const patch = await this.send(location, {method: 'PATCH', body: body as unknown as BodyInit, duplex: 'half', headers: {...await this.authHeaders([pushPull(repo)]), 'Content-Type': 'application/octet-stream'}} as RequestInit, this.domain, true).catch(err => {
          source.destroy();
          throw err;
        });
        if (patch.status !== 202) throw await this.errorOf(patch, 'PATCH', what);
        await patch.body?.cancel();
        location = await this.resolve(patch.headers.get('location') ?? location);
        const digest = `sha256:${hash.digest('hex')}`;
        if (options.digest !== undefined && options.digest !== digest)
          throw new RegistryError('DIGEST_MISMATCH', `the blob uploaded as ${options.digest} hashes to ${digest}`);
        const put = new URL(location);
        put.searchParams.set('digest', digest);
        const done = await this.request('PUT', put.href, {scopes: [pushPull(repo)], ok: [201], what, headers: {'Content-Length': '0'}});
        await done.body?.cancel();
        return {digest, size};
      } catch (err) {
        const retriable = isNetworkError(err) || (err instanceof RegistryError && (err.code === 'UNREACHABLE' || (err.status !== undefined && isRetriableStatus(err.status))));
        if (!retriable || attempt >= this.policy.retries) throw isNetworkError(err) ? unreachable(this.domain, err, what) : err;
        await sleep(backoffMs(this.policy, attempt));
      }
    }
  }

  private async authHeaders(scopes: readonly string[]): Promise<Record<string, string>> {
    const h = await this.auth.header(scopes);
    return h ? {Authorization: h} : {};
  }

  /** A Location header as an absolute URL (registries may answer a path). */
  private async resolve(location: string | null): Promise<string> {
    if (!location) throw new RegistryError('BAD_RESPONSE', `${this.domain} opened an upload without a Location`);
    return new URL(location, await this.ping()).href;
  }

  // ---- manifests ---------------------------------------------------------------------

  /**
   * A manifest or index by tag or digest, asking for every type strata reads (`accept`).
   * Read bounded (MANIFEST_MAX); by digest, the bytes must hash to it; by tag, to the
   * `Docker-Content-Digest` the registry names, if it names one. Throws MANIFEST_UNKNOWN,
   * DIGEST_MISMATCH, BAD_RESPONSE and the request's codes.
   */
  async getManifest(repo: string, ref: string, accept: readonly string[] = MANIFEST_ACCEPT): Promise<Manifest> {
    const what = `manifest ${repo}${ref.includes(':') ? '@' : ':'}${ref}`;
    const res = await this.request('GET', `/v2/${repo}/manifests/${ref}`, {scopes: [pull(repo)], ok: [200], what, headers: {Accept: accept.join(', ')}});
    const bytes = await readBounded(res, MANIFEST_MAX, `${this.domain} ${what}`);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const want = ref.includes(':') ? ref : res.headers.get('docker-content-digest');
    if (want && want.startsWith('sha256:') && want !== digest)
      throw new RegistryError('DIGEST_MISMATCH', `${this.domain} ${what} should have digest ${want} but its bytes hash to ${digest}`);
    const mediaType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim() || mediaTypeOf(bytes);
    return {bytes, digest, mediaType};
  }

  /** `HEAD` a manifest: its digest when the repository has it, undefined when not. */
  async manifestDigest(repo: string, ref: string, accept: readonly string[] = MANIFEST_ACCEPT): Promise<string | undefined> {
    const res = await this.request('HEAD', `/v2/${repo}/manifests/${ref}`, {scopes: [pull(repo)], ok: [200, 404], what: `manifest ${repo}:${ref}`, headers: {Accept: accept.join(', ')}});
    return res.status === 404 ? undefined : res.headers.get('docker-content-digest') ?? undefined;
  }

  /** `PUT` a manifest's exact bytes under a tag or digest. Returns its digest. Throws BLOB_UNKNOWN (a blob it names is missing) and the request's codes. */
  async putManifest(repo: string, ref: string, bytes: Buffer, mediaType: string): Promise<string> {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const res = await this.request('PUT', `/v2/${repo}/manifests/${ref}`, {scopes: [pushPull(repo)], ok: [201, 200], what: `manifest ${repo}:${ref}`, body: bytes, headers: {'Content-Type': mediaType}});
    await res.body?.cancel();
    const named = res.headers.get('docker-content-digest');
    if (named && named !== digest) throw new RegistryError('BAD_RESPONSE', `${this.domain} stored manifest ${repo}:${ref} as ${named}, but its bytes hash to ${digest}`);
    return digest;
  }
}

function pull(repo: string): string {
  return `repository:${repo}:pull`;
}

function pushPull(repo: string): string {
  return `repository:${repo}:pull,push`;
}

function unreachable(who: string, err: unknown, what?: string): RegistryError {
  if (err instanceof RegistryError) return err;
  const code = networkCode(err);
  const cause = (err as {cause?: {message?: string}}).cause?.message ?? (err as Error).message;
  return new RegistryError('UNREACHABLE', `${who} cannot be reached${what ? ` (${what})` : ''}: ${code ?? cause}`, {cause: err});
}

/** A body of at most `max` bytes. Throws BAD_RESPONSE past it. */
async function readBounded(res: Response, max: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > max) {
    await res.body?.cancel();
    throw new RegistryError('BAD_RESPONSE', `${what} is ${declared} bytes, more than a manifest may be`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of (res.body ?? []) as AsyncIterable<Uint8Array>) {
    n += chunk.byteLength;
    if (n > max) throw new RegistryError('BAD_RESPONSE', `${what} is more than ${max} bytes, more than a manifest may be`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

/** The `mediaType` field of a manifest, for a registry that sends no Content-Type. */
function mediaTypeOf(bytes: Buffer): string {
  try {
    const v = JSON.parse(bytes.toString('utf8')) as {mediaType?: unknown};
    return typeof v.mediaType === 'string' ? v.mediaType : '';
  } catch {
    return '';
  }
}

/**
 * An undici Agent that accepts any certificate, for `tlsVerify: false`. Node 20 bundles
 * undici for fetch without exporting it; its global dispatcher (created by the first
 * fetch) is an Agent, whose class takes `connect.rejectUnauthorized`.
 */
async function insecureDispatcher(): Promise<object> {
  const key = Symbol.for('undici.globalDispatcher.1');
  const g = globalThis as Record<symbol, unknown>;
  if (!g[key]) await fetch('data:,').catch(() => {});
  const Agent = (g[key] as {constructor: new (o: object) => object} | undefined)?.constructor;
  if (!Agent) throw new RegistryError('TLS_REQUIRED', 'this Node.js cannot turn off certificate checks for one registry');
  return new Agent({connect: {rejectUnauthorized: false}});
}
