/**
 * BLAKE3-256 of a whole buffer, in TypeScript (the BLAKE3 specification, section 2: chunks of
 * 1 KiB hashed in 64-byte blocks, their chaining values merged up a left-balanced binary
 * tree, the ROOT flag on the last compression). Unkeyed hashing only, 32 bytes of output.
 *
 * Why it exists: loading the native addon costs a command ~4 ms of CPU (it maps and relocates
 * 1 MB of code), and commands such as `create` and `diff` hash only a few records of some
 * hundred bytes each, which this does in microseconds. digest.ts decides which one hashes;
 * test/digest.test.ts checks this against the addon at every chunk and tree boundary.
 */

const IV = Uint32Array.of(0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19);
const CHUNK_START = 1;
const CHUNK_END = 2;
const PARENT = 4;
const ROOT = 8;
const BLOCK = 64;
const CHUNK = 1024;

/** The message word each G call of each of the 7 rounds reads: the permutation applied r times. */
const PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
const SCHEDULE: number[][] = [Array.from({length: 16}, (_, i) => i)];
for (let r = 1; r < 7; r++) SCHEDULE.push(PERMUTATION.map(p => SCHEDULE[r - 1]![p]!));

const state = new Uint32Array(16);
const words = new Uint32Array(16);

const rotr = (x: number, n: number) => (x >>> n) | (x << (32 - n));

function g(a: number, b: number, c: number, d: number, mx: number, my: number): void {
  const s = state;
  s[a] = s[a]! + s[b]! + mx;
  s[d] = rotr(s[d]! ^ s[a]!, 16);
  s[c] = s[c]! + s[d]!;
  s[b] = rotr(s[b]! ^ s[c]!, 12);
  s[a] = s[a]! + s[b]! + my;
  s[d] = rotr(s[d]! ^ s[a]!, 8);
  s[c] = s[c]! + s[d]!;
  s[b] = rotr(s[b]! ^ s[c]!, 7);
}

/**
 * The compression function: `cv` becomes the first 8 words of the output for the block in
 * `words`. `counter` is the chunk's index (0 for parents), below 2^53.
 */
function compress(cv: Uint32Array, counter: number, blockLength: number, flags: number): void {
  const s = state;
  s.set(cv, 0);
  s.set(IV.subarray(0, 4), 8);
  s[12] = counter % 0x1_0000_0000;
  s[13] = Math.floor(counter / 0x1_0000_0000);
  s[14] = blockLength;
  s[15] = flags;
  const m = words;
  for (const k of SCHEDULE) {
    g(0, 4, 8, 12, m[k[0]!]!, m[k[1]!]!);
    g(1, 5, 9, 13, m[k[2]!]!, m[k[3]!]!);
    g(2, 6, 10, 14, m[k[4]!]!, m[k[5]!]!);
    g(3, 7, 11, 15, m[k[6]!]!, m[k[7]!]!);
    g(0, 5, 10, 15, m[k[8]!]!, m[k[9]!]!);
    g(1, 6, 11, 12, m[k[10]!]!, m[k[11]!]!);
    g(2, 7, 8, 13, m[k[12]!]!, m[k[13]!]!);
    g(3, 4, 9, 14, m[k[14]!]!, m[k[15]!]!);
  }
  for (let i = 0; i < 8; i++) cv[i] = s[i]! ^ s[i + 8]!;
}

/** Loads `length` (≤ 64) bytes of `data` at `at` into `words`, little-endian, zero-padded. */
function loadBlock(data: Uint8Array, at: number, length: number): void {
  words.fill(0);
  for (let i = 0; i < length; i++) words[i >> 2] = words[i >> 2]! | (data[at + i]! << ((i & 3) * 8));
}

/** The chaining value of chunk `index` of `data` (ROOT on its last block when `root`). */
function chunkValue(data: Uint8Array, index: number, root: boolean): Uint32Array {
  const cv = IV.slice();
  const start = index * CHUNK;
  const end = Math.min(start + CHUNK, data.length);
  const blocks = Math.max(1, Math.ceil((end - start) / BLOCK));
  for (let b = 0; b < blocks; b++) {
    const at = start + b * BLOCK;
    const length = Math.min(BLOCK, end - at);
    loadBlock(data, at, length);
    const last = b === blocks - 1;
    compress(cv, index, length, (b === 0 ? CHUNK_START : 0) | (last ? CHUNK_END : 0) | (last && root ? ROOT : 0));
  }
  return cv;
}

/** The chaining value of a parent node over two children's values. */
function parentValue(left: Uint32Array, right: Uint32Array, root: boolean): Uint32Array {
  words.set(left, 0);
  words.set(right, 8);
  const cv = IV.slice();
  compress(cv, 0, BLOCK, PARENT | (root ? ROOT : 0));
  return cv;
}

/** The 32-byte BLAKE3 hash of `data`. */
export function blake3(data: Uint8Array): Uint8Array {
  const chunks = Math.max(1, Math.ceil(data.length / CHUNK));
  let cv: Uint32Array;
  if (chunks === 1) {
    cv = chunkValue(data, 0, true);
  } else {
    // Every chunk but the last joins the stack, merged with its left neighbours as far as the
    // number of chunks so far has trailing zero bits; the last is merged with all that remain.
    const stack: Uint32Array[] = [];
    for (let i = 0; i < chunks - 1; i++) {
      let value = chunkValue(data, i, false);
      for (let total = i + 1; (total & 1) === 0; total >>= 1) value = parentValue(stack.pop()!, value, false);
      stack.push(value);
    }
    cv = chunkValue(data, chunks - 1, false);
    while (stack.length > 0) cv = parentValue(stack.pop()!, cv, stack.length === 0);
  }
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    const w = cv[i]!;
    out[i * 4] = w;
    out[i * 4 + 1] = w >>> 8;
    out[i * 4 + 2] = w >>> 16;
    out[i * 4 + 3] = w >>> 24;
  }
  return out;
}
