import {spawn, type ChildProcess} from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {STRATA_BIN, strata, strataOnTerminal, tempDir, tempStore} from './_cli.js';
import {jsonOf, writeTar} from './_fixtures.js';
import {peer} from './_peers.js';

// What a person at a terminal sees (a pseudo-terminal through util-linux `script`):
// progress of a multi-image import, and a command waiting for a busy store.

/**
 * A strata process holding the store and unable to let go: `import -` with standard input
 * left open, stopped (SIGSTOP, as a job suspended at a shell) once it has the lock. A
 * running holder hands the store over to a writer that asks; a stopped one cannot.
 */
async function holdStore(t: ExecutionContext, store: string): Promise<ChildProcess> {
  const child = spawn(STRATA_BIN, ['import', '-'], {env: {...process.env, STRATA_STORE: store}, stdio: ['pipe', 'ignore', 'ignore']});
  t.teardown(() => { child.kill('SIGKILL'); });
  // The holder file names it once it has the lock.
  for (let i = 0; i < 200; i++) {
    const holder = await fs.readFile(path.join(store, 'holder'), 'utf8').catch(() => '');
    if (holder.includes(`"pid":${child.pid}`)) {
      child.kill('SIGSTOP');
      return child;
    }
    await new Promise(r => setTimeout(r, 50));
  }
  throw new Error('the holding strata import never took the store');
}

/** A store with an image to tag: a write that needs the store's lock. */
async function storeWithImage(t: ExecutionContext): Promise<string> {
  const store = await tempStore(t);
  const src = await tempDir(t);
  await fs.writeFile(path.join(src, 'a'), 'a\n');
  t.is((await strata(['import', src, '--tag', 'base:1'], {store})).code, 0);
  return store;
}

test.serial('a write waiting for a busy store says for whom on a terminal, then exits 75 naming the holder; a read does not wait', async t => {
  const store = await storeWithImage(t);
  const holder = await holdStore(t, store);
  const read = await strataOnTerminal(['images'], {store, env: {STRATA_LOCK_TIMEOUT_MS: '2500'}});
  t.is(read.code, 0, read.output);
  t.notRegex(read.output, /waiting/);
  const r = await strataOnTerminal(['image', 'tag', 'base:1', 'other:1'], {store, env: {STRATA_LOCK_TIMEOUT_MS: '2500'}});
  t.is(r.code, 75, r.output);
  const who = `strata process ${holder.pid} \\(strata import -, since \\d\\d:\\d\\d:\\d\\d UTC\\)`;
  t.regex(r.output, new RegExp(`strata: waiting for the store ${store}: ${who} is using it\\r?\\n`));
  t.regex(r.output, new RegExp(`strata: the store is busy: ${who} has held it longer than 3 s`));
});

test.serial('in a pipe the wait is quiet, and exit 75 still names the holder', async t => {
  const store = await storeWithImage(t);
  const holder = await holdStore(t, store);
  const r = await strata(['image', 'tag', 'base:1', 'other:1'], {store, env: {STRATA_LOCK_TIMEOUT_MS: '1500'}});
  t.is(r.code, 75);
  t.is(r.stdout, '');
  t.regex(r.stderr, new RegExp(`^strata: the store is busy: strata process ${holder.pid} \\(strata import -, since [\\d:]+ UTC\\) has held it longer than 2 s \\(set STRATA_LOCK_TIMEOUT_MS to wait longer\\)\\n$`));
  // Once the holder runs again, it lets go when asked, and the same command runs.
  holder.kill('SIGCONT');
  const again = await strata(['image', 'tag', 'base:1', 'other:1'], {store});
  t.is(again.code, 0, again.stderr);
  holder.stdin!.end();
  await new Promise(r => holder.on('close', r));
});

test('a STRATA_LOCK_TIMEOUT_MS that is not a number of milliseconds is a usage error', async t => {
  const store = await tempStore(t);
  for (const value of ['soon', '1.5', '-1', '']) {
    const r = await strata(['images'], {store, env: {STRATA_LOCK_TIMEOUT_MS: value}});
    t.is(r.code, 2, value);
    t.regex(r.stderr, /^strata: STRATA_LOCK_TIMEOUT_MS must be a whole number of milliseconds, not ".*"\n$/, value);
  }
  t.is((await strata(['images'], {store, env: {STRATA_LOCK_TIMEOUT_MS: '0'}})).code, 0);
});

/** An OCI layout of two images that share their base layer (skopeo puts both in one layout). */
async function twoImageLayout(t: ExecutionContext): Promise<{layout: string; base: string; app: string}> {
  const store = await tempStore(t);
  const dir = await tempDir(t);
  const big = (seed: number) => Array.from({length: 40_000}, (_, i) => `${seed}:${i * 7919 % 100_003}`).join('\n');
  const baseTar = await writeTar(path.join(dir, 'base.tar'), [{name: 'base.txt', content: big(1)}]);
  const appTar = await writeTar(path.join(dir, 'app.tar'), [{name: 'app.txt', content: big(2)}]);
  const base = jsonOf<{image: string}>(t, await strata(['import', baseTar, '--tag', 'base:1', '--json'], {store})).image;
  const app = jsonOf<{image: string}>(t, await strata(['import', appTar, '--on', 'base:1', '--tag', 'app:1', '--json'], {store})).image;
  const layout = path.join(dir, 'multi');
  for (const name of ['base:1', 'app:1']) {
    const one = path.join(dir, name.replace(':', '-'));
    t.is((await strata(['image', 'export', name, one], {store})).code, 0);
    peer(t, 'skopeo', ['copy', '-q', `oci:${one}:${name}`, `oci:${layout}:${name}`]);
  }
  return {layout, base, app};
}

test('a multi-image import counts a shared layer once, in the first image, and prints the total', async t => {
  const {layout, base, app} = await twoImageLayout(t);
  const store = await tempStore(t);
  const r = jsonOf<{newBytes: number; images: {id: string; tags: string[]; newBytes: number; layers: {newBytes: number}[]}[]}>(t,
    await strata(['image', 'import', layout, '--json'], {store}));
  const [first, second] = r.images;
  t.deepEqual(r.images.map(i => [i.id, i.tags]), [[base, ['base:1']], [app, ['app:1']]]);
  t.true(first!.layers[0]!.newBytes > 0);
  t.is(second!.layers[0]!.newBytes, 0, 'the shared base counts in the first image only');
  t.is(r.newBytes, first!.newBytes + second!.newBytes);
  // What the report says was stored is what the store holds.
  t.is(r.newBytes, jsonOf<{stored: number}>(t, await strata(['df', '--json'], {store})).stored);
  const human = await strata(['image', 'import', layout], {store: await tempStore(t)});
  t.regex(human.stdout, /\n2 images, 2 distinct layers: stored [\d.]+ KiB new in total\n$/);
});

test('image import progress on a terminal shows image i/n and layer j/m, never past 100 %', async t => {
  const {layout} = await twoImageLayout(t);
  const store = await tempStore(t);
  const r = await strataOnTerminal(['image', 'import', layout], {store, env: {STRATA_PROGRESS_AFTER_MS: '0'}});
  t.is(r.code, 0, r.output);
  // cli-progress redraws a line by moving to column 1 (ESC [1G) and clearing to its end (ESC [0K).
  const frames = r.output.replace(/\x1b\[0K|\x1b[78]|\x1b\[2K/g, '').split(/\x1b\[1G|\r|\n/).filter(l => l.startsWith('importing '));
  t.true(frames.length > 0, r.output);
  for (const f of frames) {
    const m = /^importing .* (\d+)% \| image (\d)\/2 layer (\d)\/(\d) \|/.exec(f);
    t.truthy(m, f);
    t.true(Number(m![1]) <= 100, f);
    t.true(Number(m![3]) <= Number(m![4]), f);
  }
  // The bar starts at the first layer of the first image (later frames depend on the redraw rate).
  t.regex(frames[0]!, /^importing -+ 0% \| image 1\/2 layer 1\/1 \| 0 B\//);
});

test('images lists one row per tag, as docker does', async t => {
  const store = await tempStore(t);
  const dir = await tempDir(t);
  const tar = await writeTar(path.join(dir, 'a.tar'), [{name: 'a', content: 'a'}]);
  const id = jsonOf<{image: string}>(t, await strata(['import', tar, '--tag', 'a:1', '--json'], {store})).image;
  for (const tag of ['a:latest', 'b:2']) t.is((await strata(['image', 'tag', 'a:1', tag], {store})).code, 0);
  const short = id.slice(3, 15);
  t.is((await strata(['images'], {store})).stdout, [
    'TAG       ID            LAYERS  SIZE',
    `a:1       ${short}       1   1 B`,
    `a:latest  ${short}       1   1 B`,
    `b:2       ${short}       1   1 B`,
    '',
  ].join('\n'));
});
