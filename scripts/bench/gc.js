#!/usr/bin/env node
// gc benchmark: time per object of `collectGarbage` on stores of 10k, 100k and 1M objects
// (half of them garbage), as a ratio to the time per object on the smallest store measured
// in the same run (1.0 = linear), and against `ostree prune --refs-only` on the same files
// when ostree is installed.
//   npm run bench -- gc [--sizes 10000,100000,1000000] [--ostree-max 100000]
import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {store as S} from './_common.js';

const args = process.argv.slice(2);
const arg = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const sizes = arg('--sizes', '10000,100000,1000000').split(',').map(Number);
const ostreeMax = Number(arg('--ostree-max', '100000'));
const hasOstree = spawnSync('sh', ['-c', 'command -v ostree'], {stdio: 'ignore'}).status === 0;

const LAYERS = 10;      // images of one layer each; the odd ones are tagged, the even ones garbage
const PER_DIR = 100;    // files per directory

/** The content of file `i` of layer `l`: small and distinct, as most files of an image are. */
const content = (l, i) => Buffer.from(`layer ${l} file ${i} `.padEnd(120, '.'));

/** Writes ~n objects (blobs + trees) as LAYERS images through the store's own API. */
async function buildStore(dir, n) {
  const store = await S.Store.open(dir, {create: true});
  const perLayer = Math.floor(n / LAYERS);
  const dirs = Math.max(1, Math.round(perLayer / (PER_DIR + 1)));
  for (let l = 0; l < LAYERS; l++) {
    const dirEntries = [];
    for (let d = 0; d < dirs; d++) {
      const entries = [];
      for (let f = 0; f < PER_DIR; f++) {
        const data = content(l, d * PER_DIR + f);
        entries.push({name: `f${String(f).padStart(3, '0')}`, kind: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: data.length, blob: await store.putBlob(data)});
      }
      dirEntries.push({name: `d${String(d).padStart(6, '0')}`, kind: 'dir', tree: await store.putTree({mode: 0o755, uid: 0, gid: 0, mtime: 0, opaque: false, entries})});
    }
    const layer = await store.putTree({mode: 0o755, uid: 0, gid: 0, mtime: 0, opaque: false, entries: dirEntries});
    await store.putLayer({id: layer, entries: dirs * (PER_DIR + 1), bytes: 0, created: new Date(0).toISOString()});
    await store.putImage({layers: [layer], config: {}}, l % 2 ? S.parseTag(`bench:${l}`) : undefined);
  }
  await store.close();
  return {perLayer, dirs};
}

/** The same files as a directory per layer, committed to a bare ostree repo, one branch each. */
async function ostreeRepo(tmp, dirs) {
  const repo = path.join(tmp, 'ostree');
  spawnSync('ostree', ['init', '--repo', repo, '--mode=bare'], {stdio: 'inherit'});
  for (let l = 0; l < LAYERS; l++) {
    const src = path.join(tmp, `layer${l}`);
    for (let d = 0; d < dirs; d++) {
      const at = path.join(src, `d${String(d).padStart(6, '0')}`);
      await fs.mkdir(at, {recursive: true});
      for (let f = 0; f < PER_DIR; f++) await fs.writeFile(path.join(at, `f${String(f).padStart(3, '0')}`), content(l, d * PER_DIR + f));
    }
    const r = spawnSync('ostree', ['commit', '--repo', repo, `--branch=l${l}`, '--no-xattrs', '--owner-uid=0', '--owner-gid=0', '--canonical-permissions', src], {encoding: 'utf8'});
    if (r.status !== 0) throw new Error(`ostree commit failed: ${r.stderr}`);
    await fs.rm(src, {recursive: true, force: true});
    if (l % 2 === 0) spawnSync('ostree', ['refs', '--repo', repo, '--delete', `l${l}`]);
  }
  return repo;
}

const rows = [];
for (const n of sizes) {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-bench-gc-'));
  try {
    const dir = path.join(tmp, 'store');
    const t0 = performance.now();
    const {dirs} = await buildStore(dir, n);
    const buildMs = performance.now() - t0;
    const store = await S.Store.open(dir);
    // Let LevelDB finish compacting what the build wrote, as in a store that has been in use.
    await store.index.compact();
    const t1 = performance.now();
    const report = await S.collectGarbage(store);
    const gcMs = performance.now() - t1;
    await store.close();
    const objects = report.objects + report.kept;
    const row = {objects, removed: report.objects, buildMs, gcMs, usPerObject: (gcMs * 1000) / objects};
    console.error(`gc bench: ${objects} objects built in ${(buildMs / 1000).toFixed(1)} s, collected in ${(gcMs / 1000).toFixed(2)} s`);
    if (hasOstree && n <= ostreeMax) {
      const repo = await ostreeRepo(tmp, dirs);
      const t2 = performance.now();
      const r = spawnSync('ostree', ['prune', '--repo', repo, '--refs-only'], {encoding: 'utf8'});
      if (r.status !== 0) throw new Error(`ostree prune failed: ${r.stderr}`);
      row.ostreeMs = performance.now() - t2;
      row.ostreeSays = r.stdout.trim().split('\n').pop();
    }
    rows.push(row);
  } finally {
    await fs.rm(tmp, {recursive: true, force: true});
  }
}

const base = rows[0].usPerObject;
console.log('objects     removed     gc ms      µs/object  ratio to smallest  ostree prune ms  strata/ostree');
for (const r of rows) {
  const vs = r.ostreeMs === undefined ? '-' : (r.gcMs / r.ostreeMs).toFixed(2);
  console.log(`${String(r.objects).padEnd(11)} ${String(r.removed).padEnd(11)} ${r.gcMs.toFixed(0).padEnd(10)} ${r.usPerObject.toFixed(2).padEnd(10)} ${(r.usPerObject / base).toFixed(2).padEnd(18)} ${r.ostreeMs === undefined ? '-'.padEnd(16) : r.ostreeMs.toFixed(0).padEnd(16)} ${vs}`);
}
for (const r of rows) if (r.ostreeSays) console.log(`ostree at ${r.objects}: ${r.ostreeSays}`);
