/**
 * When and how long to wait before trying a request again: oras-go's policy
 * (`registry/remote/retry/policy.go`): 5 retries, 250 ms doubling, each wait clamped to
 * 200 ms–10 s with ±10% jitter, `Retry-After` honoured up to 60 s.
 */
export interface RetryPolicy {
  readonly retries: number;
  readonly baseMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly retryAfterMaxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {retries: 5, baseMs: 250, minMs: 200, maxMs: 10_000, retryAfterMaxMs: 60_000};

/** Statuses that say "try again later": timeouts, rate limits, and the gateway and server errors. */
const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

export function isRetriableStatus(status: number): boolean {
  return RETRY_STATUSES.has(status);
}

/** Socket-level failures of fetch (refused, reset, closed mid-body, timed out): worth a new connection. */
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED']);

/** The system or undici code behind a fetch failure (`TypeError: fetch failed`, `terminated`), if any. */
export function networkCode(err: unknown): string | undefined {
  for (let e = err as {code?: unknown; cause?: unknown} | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return e.code;
    if (typeof e.code === 'string' && e.code.startsWith('ERR_SSL')) return e.code;
  }
  if (err instanceof TypeError && (err.message === 'terminated' || err.message === 'fetch failed')) return 'ECONNRESET';
  return undefined;
}

export function isNetworkError(err: unknown): boolean {
  const code = networkCode(err);
  return code !== undefined && !code.startsWith('ERR_SSL');
}

/** The wait before retry number `attempt` (0 for the first retry), in ms. */
export function backoffMs(policy: RetryPolicy, attempt: number, retryAfter?: string | null): number {
  if (retryAfter) {
    const seconds = Number(retryAfter);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(retryAfter) - Date.now();
    if (Number.isFinite(ms) && ms >= 0) return Math.min(ms, policy.retryAfterMaxMs);
  }
  const raw = policy.baseMs * 2 ** attempt * (0.9 + Math.random() * 0.2);
  return Math.min(policy.maxMs, Math.max(policy.minMs, raw));
}

export function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}
