import {spawn} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'ava';
import {StoreError, hashBackend, hashBytes} from '../src/index.js';
import {blake3} from '../src/objects/blake3.js';
import {createHasher, digestFromBytes, isDigest, parseDigest, wasmHasherFactory} from '../src/objects/digest.js';
import {openTempStore, run, tempDir, writeTree} from './_helpers.js';

const SIZES = [0, 1, 2, 63, 64, 65, 1023, 1024, 1025, 2048, 2049, 4096, 8191, 65_536, 65_537, 1_048_576 + 7, 3 * 1_048_576 + 11];
const INDEX_JS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'index.js');

test('the native BLAKE3 is the one in use (CI installs it)', t => {
  t.is(hashBackend(), 'native');
});

test('wasm and native BLAKE3 agree on every size, one-shot and streamed in uneven chunks', async t => {
  const wasm = await wasmHasherFactory();
  const data = randomBytes(SIZES.at(-1)!);
  for (const size of SIZES) {
    const bytes = data.subarray(0, size);
    const want = hashBytes(bytes);
    t.is(wasm().update(bytes).digest(), want, `one-shot, ${size} bytes`);
    const [n, w] = [createHasher(), wasm()];
    for (let at = 0, step = 1; at < size; at += step, step = (step * 7 + 3) % 70_001) {
      n.update(bytes.subarray(at, at + step));
      w.update(bytes.subarray(at, at + step));
    }
    t.is(n.digest(), want, `native streamed, ${size} bytes`);
    t.is(w.digest(), want, `wasm streamed, ${size} bytes`);
  }
});

test('the TypeScript BLAKE3 agrees with the native one at every chunk and tree boundary', t => {
  // 1 KiB chunks merge into a tree: sizes around 1, 2, 3, 4, 5, 8 and 16 chunks, and random ones.
  const sizes = [...SIZES, 3071, 3072, 3073, 4097, 5120, 5121, 7169, 8192, 8193, 16_383, 16_384, 16_385, 31_745];
  for (let i = 0; i < 40; i++) sizes.push((i * 7919 + 13) % 70_000);
  const data = randomBytes(Math.max(...sizes));
  for (const size of sizes) {
    const bytes = data.subarray(0, size);
    t.is(digestFromBytes(blake3(bytes)), createHasher().update(bytes).digest(), `${size} bytes`);
  }
});

test('a process that hashes only small records never loads the native addon; one that hashes more does', t => {
  const digestJs = path.resolve(path.dirname(INDEX_JS), 'objects', 'digest.js');
  const script = (records: number) => `
    const {hashBytes} = await import(${JSON.stringify(digestJs)});
    const {createRequire} = await import('node:module');
    for (let i = 0; i < ${records}; i++) hashBytes(Buffer.alloc(300, i));
    const loaded = Object.keys(createRequire(import.meta.url).cache).some(f => f.endsWith('.node'));
    console.log(JSON.stringify({loaded, digest: hashBytes(Buffer.from('x'))}));`;
  const x = hashBytes(Buffer.from('x'));
  for (const [records, loaded] of [[20, false], [1000, true]] as const) {
    const out = run(process.execPath, ['--input-type=module', '-e', script(records)], Buffer.alloc(0)).toString();
    t.deepEqual(JSON.parse(out), {loaded, digest: x}, `${records} records of 300 bytes`);
  }
});

test('interleaved wasm hashers keep their own state', async t => {
  const wasm = await wasmHasherFactory();
  const [a, b] = [wasm(), wasm()];
  a.update(Buffer.from('hel')); b.update(Buffer.from('wor')); a.update(Buffer.from('lo')); b.update(Buffer.from('ld'));
  t.deepEqual([a.digest(), b.digest()], [hashBytes(Buffer.from('hello')), hashBytes(Buffer.from('world'))]);
});

test('BLAKE3 digests match b3sum', t => {
  for (const size of [0, 1025, 1_048_576 + 7]) {
    const bytes = randomBytes(size);
    t.is<string, string>(hashBytes(bytes), `b3:${run('b3sum', ['--no-names'], bytes).toString().trim()}`);
  }
});

test('an import hashed with wasm in another process gives the same layer id', async t => {
  const store = await openTempStore(t);
  const dir = await tempDir(t);
  const files: Record<string, string> = {'big.bin': randomBytes(200_000).toString('latin1')};
  for (let i = 0; i < 300; i++) files[`d${i % 5}/f${i}`] = `${i}`.repeat(i * 3); // enough to use hashing threads
  await writeTree(dir, files);
  const native = (await (await import('../src/index.js')).importDirectory(store, dir)).layer.id;
  const storeDir = path.join(await tempDir(t), 'wasm-store');
  const script = `
    const S = await import(${JSON.stringify(INDEX_JS)});
    const store = await S.Store.open(${JSON.stringify(storeDir)}, {create: true});
    const r = await S.importDirectory(store, ${JSON.stringify(dir)});
    await store.close();
    console.log(JSON.stringify({backend: S.hashBackend(), id: r.layer.id}));`;
  const scriptFile = path.join(await tempDir(t), 'import.mjs');
  await fs.writeFile(scriptFile, script);
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [scriptFile], {env: {...process.env, STRATA_HASH: 'wasm'}, stdio: ['ignore', 'pipe', 'inherit']});
    let s = '';
    child.stdout.on('data', d => { s += d; });
    child.on('error', reject);
    child.on('close', code => (code === 0 ? resolve(s) : reject(new Error(`child exited ${code}`))));
  });
  t.deepEqual(JSON.parse(out), {backend: 'wasm', id: native});
});

test('digests are parsed strictly', t => {
  const good = hashBytes(Buffer.from('x'));
  t.is(parseDigest(good), good);
  for (const bad of ['', good.toUpperCase(), good.slice(0, -1), `sha256:${good.slice(3)}`, good.slice(3), `${good}0`, `b3:${'g'.repeat(64)}`]) {
    t.false(isDigest(bad), bad);
    t.is(t.throws(() => parseDigest(bad), {instanceOf: StoreError})?.code, 'BAD_DIGEST');
  }
});
