#!/usr/bin/env node
// Container costs against image size and stack depth, each as a ratio measured in this run:
// create, diff (10 changes) and commit (1 changed file) on a 100,000-file image vs a 10-file
// image; `strata create` (the real CLI) on both; stat through 1, 10, 100 and 1000 layers.
// A ratio near 1 means the cost does not grow with the image. Uses the built packages (tsc -b).
import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import {createRequire} from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import {root, store as S} from './_common.js';

const {Store, importTarInput, parseTag} = S;
const union = await import(path.join(root, 'packages/union/dist/src/index.js'));
const tarStream = createRequire(path.join(root, 'packages/store/package.json'))('tar-stream');
const STRATA = path.join(root, 'node_modules', '.bin', 'strata');
const BIG = Number(process.env.BENCH_BIG_FILES ?? 100_000);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bench-'));
process.on('exit', () => fs.rmSync(work, {recursive: true, force: true}));

/** A layer from `files` (path -> content), streamed through tar-stream into the store. */
async function importFiles(store, files) {
  const pack = tarStream.pack();
  const done = importTarInput(store, pack, 'a generated tar');
  for (const [name, content] of files) {
    pack.entry({name, mode: 0o644, mtime: new Date(1_700_000_000_000)}, content);
  }
  pack.finalize();
  return (await done).layer.id;
}

function* manyFiles(n, tag = '') {
  const perDir = 100;
  for (let i = 0; i < n; i++) yield [`d${Math.floor(i / perDir)}/f${i % perDir}`, `file ${i}${tag}\n`];
}

/**
 * Median milliseconds of `runs` calls of `big` and of `small`, taken in turn (after one
 * warm-up each), so that the machine's noise falls on both alike.
 */
async function medians(runs, big, small) {
  await big();
  await small();
  const times = [[], []];
  for (let i = 0; i < runs; i++) {
    for (const [k, fn] of [[0, big], [1, small]]) {
      const t0 = process.hrtime.bigint();
      await fn();
      times[k].push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  return times.map(xs => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]);
}

const rows = [];
function report(what, big, small, labels = [`${BIG.toLocaleString('en-US')}-file image`, '10-file image']) {
  rows.push([what, `${labels[0]}: ${big.toFixed(3)} ms`, `${labels[1]}: ${small.toFixed(3)} ms`, (big / small).toFixed(2)]);
  console.log(`${what}: ${labels[0]} ${big.toFixed(3)} ms, ${labels[1]} ${small.toFixed(3)} ms, ratio ${(big / small).toFixed(2)}`);
}

const storeDir = path.join(work, 'store');
let store = await Store.open(storeDir, {create: true});
let t0 = Date.now();
const bigLayer = await importFiles(store, manyFiles(BIG));
const smallLayer = await importFiles(store, manyFiles(10));
const big = await store.putImage({layers: [bigLayer], config: {}}, parseTag('big:1'));
const small = await store.putImage({layers: [smallLayer], config: {}}, parseTag('small:1'));
await union.flattenLayers(store, [bigLayer]); // the one-time flatten that import --tag also does
await union.flattenLayers(store, [smallLayer]);
console.log(`setup: ${BIG.toLocaleString('en-US')}-file and 10-file images in ${Date.now() - t0} ms`);

// create (library)
let n = 0;
report('create', ...await medians(31, () => union.createContainer(store, {image: 'big:1', name: `c${n++}`}), () => union.createContainer(store, {image: 'small:1', name: `c${n++}`})));

// diff with 10 changes: 10 files rewritten in 10 directories
async function tenChanged(image) {
  const c = await union.createContainer(store, {image});
  const view = await union.openContainerView(store, c);
  for (let i = 0; i < 10; i++) await view.writeFile(union.parseViewPath(`/d0/f${i}`), Buffer.from(`changed ${i}\n`));
  return {c, view, base: await union.openImageView(store, c.image)};
}
const bigTen = await tenChanged('big:1'), smallTen = await tenChanged('small:1');
const diffOf = ten => async () => { if ((await union.diffViews(ten.base, ten.view)).length !== 11) throw new Error('diff'); };
report('diff, 10 changes', ...await medians(21, diffOf(bigTen), diffOf(smallTen)));

// commit of 1 changed file
async function oneChanged(image) {
  const c = await union.createContainer(store, {image});
  const view = await union.openContainerView(store, c);
  await view.writeFile(union.parseViewPath('/d0/f1'), Buffer.from('one change\n'));
  return c;
}
const bigOne = await oneChanged('big:1'), smallOne = await oneChanged('small:1');
report('commit, 1 changed file', ...await medians(11, () => union.commitContainer(store, bigOne), () => union.commitContainer(store, smallOne)));

// stat through 1, 10, 100 and 1000 layers: layer i adds /l<i>; stat the bottom layer's file
t0 = Date.now();
const layers = [];
for (let i = 0; i < 1000; i++) layers.push(await importFiles(store, [[`l${i}/f`, `layer ${i}\n`], ['top', `${i}\n`]]));
const views = {};
for (const depth of [1, 10, 100, 1000]) views[depth] = await union.openImageView(store, await store.putImage({layers: layers.slice(0, depth), config: {}}));
// Rounds in turn, so that warming up and the machine's noise fall on every depth alike.
const samples = {1: [], 10: [], 100: [], 1000: []};
const target = union.parseViewPath('/l0/f');
for (let round = 0; round < 15; round++) {
  for (const depth of [1, 10, 100, 1000]) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < 500; i++) if ((await views[depth].stat(target)).size !== 8) throw new Error('stat');
    if (round > 0) samples[depth].push(Number(process.hrtime.bigint() - t) / 1e6 / 500);
  }
}
const statMs = Object.fromEntries(Object.entries(samples).map(([d, xs]) => [d, xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]]));
console.log(`setup: 1000 one-file layers and their images in ${Date.now() - t0} ms`);
for (const depth of [10, 100, 1000]) report(`stat, ${depth} layers vs 1`, statMs[depth], statMs[1], [`${depth} layers`, '1 layer']);

// create with the real CLI (start-up included): the store must be closed for it
await store.close();
function cliCreate(image) {
  return () => {
    const r = spawnSync(STRATA, ['create', image, '--store', storeDir], {encoding: 'utf8'});
    if (r.status !== 0) throw new Error(r.stderr);
  };
}
report('strata create (CLI)', ...await medians(9, cliCreate('big:1'), cliCreate('small:1')));

console.log('\n| benchmark | measured | reference | ratio |\n|---|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
