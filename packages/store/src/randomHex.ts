/**
 * `bytes` random bytes (at most 6) as hex, from Math.random: for names that a process makes
 * unique beside its pid (a lease, a trash directory) and creates exclusively. They need no
 * cryptographic randomness, and node:crypto, loaded for randomBytes alone, cost every
 * command that takes a lease 6-11 ms of CPU at its start (a `--cpu-prof` of `strata gc`).
 * V8 seeds each isolate's Math.random from the system's entropy (Node's entropy source).
 */
export function randomHex(bytes: number): string {
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > 6) throw new TypeError(`randomHex: ${bytes} bytes`);
  return Math.floor(Math.random() * 2 ** (8 * bytes)).toString(16).padStart(2 * bytes, '0');
}
