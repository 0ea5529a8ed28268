#!/usr/bin/env node
// Where should a blob stop living inline in LevelDB and become an object file?
// For each size, stores the same random blobs through a real Store twice: once with
// every blob inline, once with every blob as an object file (temp file, fsync,
// rename). Then reopens each store and reads every blob back. Prints per-blob cost
// and the ratio inline/object (< 1: inline is cheaper) for write, read, and both.
// Usage: npm run bench -- inline [MiB per size, default 32]
import {randomBytes} from 'node:crypto';
import * as fs from 'node:fs/promises';
import {loadavg} from 'node:os';
import * as path from 'node:path';
import {fmtBytes, root, scratch, store as S, time} from './_common.js';

// The pool directory import uses; not on the package face, so read from its module.
const {runPool} = await import(path.join(root, 'packages', 'store', 'dist', 'src', 'import', 'importDirectory.js'));

const budget = Number(process.argv[2] ?? 32) * 1024 * 1024;
const SIZES = [1, 2, 4, 8, 16, 32, 64, 256, 1024].map(k => k * 1024);
const RUNS = 3; // each figure is the median of this many runs
const CONCURRENCY = 16; // as directory import (importDirectory FILE_CONCURRENCY)

async function run(dir, blobs, inlineMax) {
  await fs.rm(dir, {recursive: true, force: true});
  const w = await time(async () => {
    const store = await S.Store.open(dir, {create: true, inlineMax});
    await runPool(blobs, CONCURRENCY, async b => { await store.putBlob(b); });
    // A real import ends with a synced commit (its layer record); make the inline side pay for it too.
    const root = await store.putTree({mode: 0o755, uid: 0, gid: 0, mtime: 0, opaque: false, entries: []});
    await store.putLayer({id: root, entries: 0, bytes: 0, created: new Date(0).toISOString()});
    await store.close();
  });
  const store = await S.Store.open(dir, {inlineMax});
  const digests = blobs.map(b => S.hashBytes(b)).sort(); // digest order: random relative to write order
  const r = await time(async () => {
    await runPool(digests, CONCURRENCY, async d => { await store.readBlob(d); });
  });
  await store.close();
  return {write: w.seconds, read: r.seconds};
}

async function repeat(fn) {
  const out = [];
  for (let i = 0; i < RUNS; i++) out.push(await fn()); // alternating would share caches unevenly; runs are short
  return out;
}
function median(runs) {
  const mid = k => runs.map(r => r[k]).sort((a, b) => a - b)[runs.length >> 1];
  return {write: mid('write'), read: mid('read')};
}

const base = await scratch('inline');
console.log(`load average at start: ${loadavg().map(l => l.toFixed(1)).join(' ')} (2 cores here: above ~2, other work shares the CPU)`);
console.log(`inline vs object-file blobs, ${fmtBytes(budget)} per size, concurrency ${CONCURRENCY}, median of ${RUNS}`);
console.log('size      blobs  inline w/r µs per blob   object w/r µs per blob   ratio inline/object: write  read  both');
for (const size of SIZES) {
  const n = Math.max(16, Math.min(2000, Math.floor(budget / size)));
  const blobs = Array.from({length: n}, () => randomBytes(size));
  const inline = median(await repeat(() => run(path.join(base, 'inline'), blobs, Infinity)));
  const object = median(await repeat(() => run(path.join(base, 'object'), blobs, -1)));
  const us = s => ((s / n) * 1e6).toFixed(0).padStart(6);
  const ratio = (a, b) => (a / b).toFixed(2).padStart(5);
  console.log(`${fmtBytes(size).padEnd(9)} ${String(n).padStart(5)}  ${us(inline.write)} / ${us(inline.read)}          ${us(object.write)} / ${us(object.read)}          ${ratio(inline.write, object.write)}  ${ratio(inline.read, object.read)}  ${ratio(inline.write + inline.read, object.write + object.read)}`);
}
await fs.rm(base, {recursive: true, force: true});
console.log(`load average at end: ${loadavg().map(l => l.toFixed(1)).join(' ')}`);
