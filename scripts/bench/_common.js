// Shared by the benchmarks: the built store package, scratch space, timing.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The built @strata/store (run `npx tsc -b` first). */
export const store = await import(path.join(root, 'packages', 'store', 'dist', 'src', 'index.js')).catch(err => {
  console.error('bench: the store package is not built; run "npx tsc -b" first');
  throw err;
});

/** Scratch space for generated inputs and stores: .bench/ at the repository root (ignored by git). */
export async function scratch(name) {
  const dir = path.join(root, '.bench', name);
  await fs.mkdir(dir, {recursive: true});
  return dir;
}

/** A small deterministic PRNG (mulberry32), so every run generates the same inputs. */
export function prng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function time(fn) {
  const start = process.hrtime.bigint();
  const value = await fn();
  return {seconds: Number(process.hrtime.bigint() - start) / 1e9, value};
}

export function fmtBytes(n) {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(n % (1 << 30) ? 2 : 0)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(n % (1 << 20) ? 1 : 0)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(n % (1 << 10) ? 1 : 0)} KiB`;
  return `${n} B`;
}
