import {randomBytes} from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test from 'ava';
import {strata} from './_cli.js';
import {jsonOf, storeTemplate} from './_fixtures.js';

// A store whose index/ is gone is damaged, not empty: every command exits 3 and changes
// nothing (gc above all), verify says so, and verify --repair starts a new index that keeps
// what the object files and the containers' writable layers hold.

const BIG = randomBytes(100_000); // an object file; small files live only in the index

const template = storeTemplate(async (store, scratch) => {
  const src = path.join(scratch, 'src');
  await fs.mkdir(src);
  await fs.writeFile(path.join(src, 'big'), BIG);
  await fs.writeFile(path.join(src, 'small'), 'small\n');
  for (const args of [['import', src, '--tag', 'img:1'], ['create', 'img:1', '--name', 'web']]) {
    const r = await strata(args, {store});
    if (r.code !== 0) throw new Error(r.stderr);
  }
  const w = await strata(['fs', 'web', 'write', '/notes.txt'], {store, input: 'work in the container\n'});
  if (w.code !== 0) throw new Error(w.stderr);
  return {src};
});

async function withoutIndex(t: import('ava').ExecutionContext) {
  const {store, made} = await template.copy(t);
  await fs.rm(path.join(store, 'index'), {recursive: true});
  return {store, ...made};
}

/** Every file under the store but the index: what a command on a store without its index must leave alone. */
async function files(store: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(store, {recursive: true, withFileTypes: true}))
    if (!e.isDirectory()) out.push(path.relative(store, path.join(e.parentPath, e.name)));
  return out.filter(f => !f.startsWith('index')).sort();
}

test('without its index every command exits 3 in one line and gc removes nothing', async t => {
  const {store} = await withoutIndex(t);
  const before = await files(store);
  for (const args of [['gc'], ['images'], ['ps'], ['cat', 'img:1', '/small'], ['import', store]]) {
    const r = await strata(args, {store});
    t.is(r.code, 3, `strata ${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /^strata: [^\n]*lost its index[^\n]*verify --repair[^\n]*\n$/);
  }
  t.deepEqual(await files(store), before);
  await t.throwsAsync(fs.access(path.join(store, 'index')), {code: 'ENOENT'}, 'no fresh index was started');
});

test('verify says the index is missing and exits 3', async t => {
  const {store} = await withoutIndex(t);
  const r = await strata(['verify', '--json'], {store});
  t.is(r.code, 3);
  const report = JSON.parse(r.stdout) as {problems: {object: string; kind: string}[]; damagedContainers: unknown[]; remaining: number};
  t.deepEqual(report.problems.map(p => [p.object, p.kind]), [['index', 'missing']]);
  t.is(report.damagedContainers.length, 1);
  t.regex((await strata(['verify'], {store})).stdout, /index is missing: 1 object files and 1 container/);
});

test('verify --repair keeps the object files and the container\'s work through gc, and the store verifies', async t => {
  const {store, src} = await withoutIndex(t);
  const repaired = await strata(['verify', '--repair'], {store});
  t.is(repaired.code, 0, repaired.stdout + repaired.stderr);
  t.regex(repaired.stderr, /1 intact object files indexed again/);
  const pins = jsonOf<{kind: string; id: string}[]>(t, await strata(['pin', 'ls', '--json'], {store}));
  t.deepEqual(pins.map(p => p.kind), ['layer', 'layer']);
  t.is((await strata(['gc'], {store})).code, 0);
  t.is((await strata(['verify'], {store})).code, 0);
  // The container's change survives as a layer; the big file's blob as well: importing the
  // source again stores only what lived in the index.
  const layers = jsonOf<{id: string; source?: string}[]>(t, await strata(['layers', '--json'], {store}));
  const work = layers.find(l => /writable layer of container/.test(l.source ?? ''))!;
  t.regex((await strata(['layer', 'inspect', work.id], {store})).stdout, /notes\.txt/);
  const again = jsonOf<{newBytes: number}>(t, await strata(['import', src, '--tag', 'img:1', '--json'], {store}));
  t.is(again.newBytes, 'small\n'.length);
  t.is((await strata(['verify'], {store})).code, 0);
});
