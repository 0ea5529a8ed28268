import {spawnSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {Readable, Writable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import {gunzipSync} from 'node:zlib';
import test from 'ava';
import {GZIP_BLOCK_BYTES, createGzipCompressor} from '../src/oci/gzip.js';

/** mulberry32: the same bytes on every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Compressible text with incompressible stretches, as a layer tar is. */
function sample(size: number, seed = 1): Buffer {
  const rand = prng(seed);
  const out = Buffer.alloc(size);
  const words = Buffer.from('strata layer blob tree image manifest config digest ');
  for (let i = 0; i < size; i++) out[i] = rand() < 0.3 ? Math.floor(rand() * 256) : words[i % words.length]!;
  return out;
}

async function gzip(input: Buffer, chunk: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let at = 0; at < input.length; at += chunk) parts.push(input.subarray(at, at + chunk));
  const out: Buffer[] = [];
  await pipeline(Readable.from(parts), createGzipCompressor(6), new Writable({write(c: Buffer, _e, done) { out.push(c); done(); }}));
  return Buffer.concat(out);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('parallel gzip gives the same bytes however the input is chunked, and they gunzip to the input', async t => {
  const input = sample(3 * GZIP_BLOCK_BYTES + 12_345);
  const whole = await gzip(input, input.length);
  for (const chunk of [512, 65_536, GZIP_BLOCK_BYTES, GZIP_BLOCK_BYTES + 1]) t.is(sha(await gzip(input, chunk)), sha(whole), `chunks of ${chunk}`);
  t.true(gunzipSync(whole).equals(input));
  t.true(whole.length < input.length * 0.8);
});

test('gzip(1) reads it as one member with the right CRC and length', async t => {
  const input = sample(2 * GZIP_BLOCK_BYTES + 7, 2);
  const r = spawnSync('gzip', ['-dc'], {input: await gzip(input, 100_000), maxBuffer: 1 << 26});
  if (r.error) throw new Error(`gzip is not installed: ${r.error.message}`);
  t.is(r.status, 0, r.stderr.toString());
  t.is(sha(r.stdout), sha(input));
  const list = spawnSync('gzip', ['-lv'], {input: await gzip(input, input.length)});
  t.is(list.status, 0, list.stderr.toString());
});

test('empty input and input of exactly whole blocks are valid gzip', async t => {
  for (const size of [0, 1, GZIP_BLOCK_BYTES, 2 * GZIP_BLOCK_BYTES]) {
    const input = sample(size, 3);
    const out = await gzip(input, 70_000);
    t.true(gunzipSync(out).equals(input), `${size} bytes`);
    t.is(spawnSync('gzip', ['-t'], {input: out}).status, 0, `gzip -t, ${size} bytes`);
  }
});
