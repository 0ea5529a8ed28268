import {type Challenge, parseChallenges} from './challenge.js';
import type {Credentials} from './credentials.js';
import {RegistryError} from './errors.js';

/** How the Authenticator sends its token requests (the client's fetch, with retries). */
export type SendToken = (url: string, init: RequestInit) => Promise<Response>;

interface Token {
  readonly value: string;
  readonly expires: number;
}

/** Tokens are refreshed this long before they expire, so one never runs out in flight. */
const EXPIRY_MARGIN_MS = 5_000;
/** The token spec's default lifetime when the server names none (token.md, `expires_in`). */
const DEFAULT_EXPIRES_S = 60;

/**
 * The `Authorization` of a registry's requests (distribution `docs/spec/auth/token.md`):
 * learns the challenge from the first 401 (or the ping), then for Bearer fetches a token
 * per scope set (`repository:team/app:pull,push`, several joined when a mount needs `pull`
 * on the source too), cached until shortly before it expires, one fetch at a time per
 * scope set (parallel workers share it); for Basic sends the credentials. Credentials
 * are resolved once, lazily, and never sent to a realm unless it asks.
 */
export class Authenticator {
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, Token>();
  private readonly inflight = new Map<string, Promise<Token>>();
  private creds: Promise<Credentials | undefined> | undefined;

  constructor(
    private readonly registry: string,
    private readonly credentials: Credentials | (() => Promise<Credentials | undefined>) | undefined,
    private readonly send: SendToken,
  ) {}

  /** Remembers what a 401 asked for. Returns false when it names no scheme strata speaks. */
  learn(header: string | null): boolean {
    const challenges = parseChallenges(header ?? '');
    const known = challenges.find(c => c.scheme === 'bearer') ?? challenges.find(c => c.scheme === 'basic');
    if (!known) return false;
    this.challenge = known;
    return true;
  }

  /** True once the registry has asked for authentication. */
  get required(): boolean {
    return this.challenge !== undefined;
  }

  /** True when the registry asked for Basic auth: a 401 then means the credentials themselves were refused. */
  get basic(): boolean {
    return this.challenge?.scheme === 'basic';
  }

  /**
   * The Authorization header for a request needing `scopes`, or undefined when the
   * registry asked for none. `stale` drops a cached token first (it was just refused).
   * Throws UNAUTHORIZED when the token server refuses.
   */
  async header(scopes: readonly string[], stale = false): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') {
      const creds = await this.resolveCredentials();
      if (!creds || !('username' in creds)) return undefined;
      return `Basic ${Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64')}`;
    }
    const all = [...new Set([...scopes, ...(c.params.scope ? c.params.scope.split(' ') : [])])].filter(s => s !== '').sort();
    const key = all.join(' ');
    if (stale) this.tokens.delete(key);
    const cached = this.tokens.get(key);
    if (cached && cached.expires > Date.now()) return `Bearer ${cached.value}`;
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.fetchToken(c, all).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    const token = await pending;
    this.tokens.set(key, token);
    return `Bearer ${token.value}`;
  }

  /** The user name strata authenticates as, for messages. */
  async who(): Promise<string | undefined> {
    const creds = await this.resolveCredentials();
    return creds && ('username' in creds ? creds.username : '<identity token>');
  }

  private resolveCredentials(): Promise<Credentials | undefined> {
    this.creds ??= typeof this.credentials === 'function' ? this.credentials() : Promise.resolve(this.credentials);
    return this.creds;
  }

  private async fetchToken(c: Challenge, scopes: readonly string[]): Promise<Token> {
    const realm = c.params.realm;
    if (!realm) throw new RegistryError('BAD_RESPONSE', `${this.registry} asked for a Bearer token but named no realm`);
    const url = new URL(realm);
    const creds = await this.resolveCredentials();
    let res: Response;
    if (creds && 'identityToken' in creds) {
      // An identity token is an OAuth2 refresh token: POST it (token.md, "oauth.md").
      const form = new URLSearchParams({grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'strata', ...(c.params.service ? {service: c.params.service} : {})});
      if (scopes.length) form.set('scope', scopes.join(' '));
      res = await this.send(url.href, {method: 'POST', body: form, headers: {'Content-Type': 'application/x-www-form-urlencoded'}});
    } else {
      if (c.params.service) url.searchParams.set('service', c.params.service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const headers: Record<string, string> = {};
      if (creds) headers.Authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64')}`;
      res = await this.send(url.href, {method: 'GET', headers});
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      const who = await this.who();
      throw new RegistryError('UNAUTHORIZED', who
        ? `${this.registry} refused the credentials of ${who} (the token server answered ${res.status})`
        : `${this.registry} needs credentials (the token server answered ${res.status}); give --creds USER:PASS or run "strata login ${this.registry}"`, {status: res.status});
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new RegistryError('REGISTRY_ERROR', `the token server of ${this.registry} answered ${res.status}`, {status: res.status});
    }
    let body: {token?: unknown; access_token?: unknown; expires_in?: unknown};
    try {
      body = (await res.json()) as typeof body;
    } catch (err) {
      throw new RegistryError('BAD_RESPONSE', `the token server of ${this.registry} answered something that is not JSON`, {cause: err});
    }
    const value = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : undefined;
    if (!value) throw new RegistryError('BAD_RESPONSE', `the token server of ${this.registry} answered without a token`);
    const seconds = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_EXPIRES_S;
    return {value, expires: Date.now() + seconds * 1000 - EXPIRY_MARGIN_MS};
  }
}
