import {createRequire} from 'node:module';
import {StoreError} from '../errors.js';
import {blake3} from './blake3.js';

/** A content address: "b3:" and 64 lowercase hex digits of a BLAKE3-256 hash. */
export type Digest = string & {readonly __brand: 'Digest'};

export interface Hasher {
  update(data: Uint8Array): Hasher;
  digest(): Digest;
}

type HasherFactory = () => Hasher;

const DIGEST_RE = /^b3:[0-9a-f]{64}$/;

/** Validates a digest at the edge of the program; inside, `Digest` is trusted. */
export function parseDigest(s: string): Digest {
  if (!DIGEST_RE.test(s)) throw new StoreError('BAD_DIGEST', `"${s}" is not a digest (want b3: and 64 hex digits)`);
  return s as Digest;
}

export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

/** The raw 32 bytes of a digest, as they appear inside tree encodings. */
export function digestBytes(d: Digest): Buffer {
  return Buffer.from(d.slice(3), 'hex');
}

export function digestFromBytes(b: Uint8Array): Digest {
  return `b3:${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')}` as Digest;
}

/** The short form users see: 12 hex digits, like docker's image ids. */
export function shortDigest(d: Digest): string {
  return d.slice(3, 15);
}

type NativeHash = {factory: HasherFactory; oneShot: (data: Uint8Array) => Digest};

/** The native addon's streaming factory and one-shot hash. Throws when the addon cannot load. */
function loadNative(): NativeHash {
  const {Blake3Hasher, blake3} = createRequire(import.meta.url)('@napi-rs/blake-hash') as typeof import('@napi-rs/blake-hash');
  const oneShot = (data: Uint8Array) => `b3:${blake3(data).toString('hex')}` as Digest;
  return {oneShot, factory: () => {
    const h = new Blake3Hasher();
    const hasher: Hasher = {
      update(data) { h.update(data); return hasher; },
      digest() { return `b3:${h.digest('hex')}` as Digest; },
    };
    return hasher;
  }};
}

/**
 * The WebAssembly BLAKE3 of hash-wasm: slower, but runs wherever Node runs. One wasm
 * instance serves every hasher; each hasher keeps its own saved state, so hashers may
 * interleave across awaits.
 */
export async function wasmHasherFactory(): Promise<HasherFactory> {
  const {createBLAKE3} = await import('hash-wasm');
  const wasm = await createBLAKE3();
  wasm.init();
  const fresh = wasm.save();
  return () => {
    let state = fresh;
    const hasher: Hasher = {
      update(data) { wasm.load(state); wasm.update(data); state = wasm.save(); return hasher; },
      digest() { wasm.load(state); return `b3:${wasm.digest('hex')}` as Digest; },
    };
    return hasher;
  };
}

// The native addon is loaded on first use, not when the store opens: ps, images and init
// hash nothing, and create and diff only a few records (below), while loading it costs
// ~4 ms of CPU (docs/benchmarks.md).
const wantWasm = () => process.env.STRATA_HASH === 'wasm';
let native: NativeHash | undefined;
let wasm: HasherFactory | undefined;

/** The native hash, loaded now if it is not yet; undefined when the wasm build is in use. */
function nativeHash(): NativeHash | undefined {
  if (native) return native;
  if (wasm) return undefined;
  if (wantWasm()) throw new TypeError('assertion failed: ensureHasher() was not awaited');
  try {
    native = loadNative();
  } catch (err) {
    throw new StoreError('HASH_UNAVAILABLE', `the native BLAKE3 addon (@napi-rs/blake-hash) does not load here (${(err as Error).message.split('\n')[0]}); STRATA_HASH=wasm uses the WebAssembly build`, {cause: err});
  }
  return native;
}

/** Which BLAKE3 implementation `createHasher` uses. */
export function hashBackend(): 'native' | 'wasm' {
  return wantWasm() || wasm ? 'wasm' : 'native';
}

/**
 * Loads the WebAssembly build when STRATA_HASH=wasm asks for it (the native addon is
 * loaded on first use instead). Called by `Store.open`, so every hashing caller after it
 * is synchronous.
 */
export async function ensureHasher(): Promise<void> {
  if (wantWasm() && !wasm && !native) wasm = await wasmHasherFactory();
}

/**
 * For a caller about to hash thousands of inputs (a metadata image's build): loads the
 * native addon now, so that hashBytes skips the TypeScript budget below, whose code runs
 * cold in a fresh process. Where the addon does not load, the first hash says so, as before.
 */
export function preferNativeHash(): void {
  if (native || wasm || wantWasm()) return;
  try {
    nativeHash();
  } catch {
    // reported by the first hash that needs it
  }
}

/** A streaming BLAKE3 hasher. Throws HASH_UNAVAILABLE when the native addon cannot load. */
export function createHasher(): Hasher {
  const n = nativeHash();
  return n ? n.factory() : wasm!();
}

/**
 * Small inputs are hashed in TypeScript (blake3.ts) until the process has hashed
 * JS_BUDGET bytes so: ~2 ms of work at its ~30 MB/s, below the addon's ~4 ms load. So
 * `create` and `diff`, which verify a few records of some hundred bytes, never load the
 * addon, and a command that hashes much loads it soon.
 */
const JS_LARGEST = 16 * 1024;
const JS_BUDGET = 64 * 1024;
let jsHashed = 0;

export function hashBytes(data: Uint8Array): Digest {
  if (!native && !wasm && data.length <= JS_LARGEST && jsHashed + data.length <= JS_BUDGET && !wantWasm()) {
    jsHashed += data.length;
    return digestFromBytes(blake3(data));
  }
  // The addon's one-shot call skips making a hasher object: ~2.5 µs vs ~9 µs for 200 bytes.
  const n = nativeHash();
  if (n) return n.oneShot(data);
  return createHasher().update(data).digest();
}
