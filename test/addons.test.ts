import * as fs from 'node:fs';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {strata, tempDir} from './_cli.js';
import {mustRun, storeTemplate, writeTree} from './_fixtures.js';

// Loading a native addon is a few milliseconds of every command that loads it
// (docs/benchmarks.md, "Fixed cost of a command"), so each is loaded when first used.
// What a real strata process has loaded is read from its own /proc/self/maps as it exits,
// by a preload given through NODE_OPTIONS.
const PRELOAD = `process.on('exit', () => {
  const maps = require('fs').readFileSync('/proc/self/maps', 'utf8');
  const addons = new Set(maps.split('\\n').map(l => l.split(/\\s+/)[5] ?? '').filter(p => p.endsWith('.node')).map(p => require('path').basename(p)));
  require('fs').writeFileSync(process.env.STRATA_TEST_ADDONS, [...addons].sort().join('\\n'));
  require('fs').writeFileSync(process.env.STRATA_TEST_ADDONS + '.builtins', process.moduleLoadList.filter(m => m.startsWith('NativeModule ')).map(m => m.slice(13)).join('\\n'));
});
`;

/** Which kinds of addon (leveldb, blake3, xattr, zstd) a strata run loaded. */
async function addonsOf(t: ExecutionContext, args: string[], store?: string, input?: string): Promise<string[]> {
  return (await loadedBy(t, args, store, input)).addons;
}

/** The addons and Node's builtin modules (`process.moduleLoadList`) a strata run loaded. */
async function loadedBy(t: ExecutionContext, args: string[], store?: string, input?: string): Promise<{addons: string[]; builtins: string[]}> {
  const dir = await tempDir(t, 'strata-addons-');
  const preload = path.join(dir, 'preload.cjs');
  const out = path.join(dir, 'addons');
  fs.writeFileSync(preload, PRELOAD);
  const r = await strata(args, {store, input, env: {NODE_OPTIONS: `--require=${preload}`, STRATA_TEST_ADDONS: out}});
  t.is(r.code, 0, `strata ${args.join(' ')}: ${r.stderr}`);
  const kinds: Record<string, RegExp> = {leveldb: /^classic-level/, blake3: /^blake\./, xattr: /^xattr\./, zstd: /zstd/};
  const files = fs.readFileSync(out, 'utf8').split('\n').filter(Boolean);
  return {addons: Object.keys(kinds).filter(k => files.some(f => kinds[k]!.test(f))), builtins: fs.readFileSync(`${out}.builtins`, 'utf8').split('\n')};
}

const template = storeTemplate(async (store, scratch) => {
  const src = path.join(scratch, 'src');
  // big.bin is hashed by the addon when read (small records and files are hashed in TypeScript).
  await writeTree(src, {'etc/hostname': 'base\n', 'big.bin': 'b'.repeat(100_000)});
  await mustRun(['import', src, '--tag', 'base:1'], store);
  await mustRun(['create', 'base:1', '--name', 'web'], store);
});

test('strata --help loads no native addon', async t => {
  t.deepEqual(await addonsOf(t, ['--help']), []);
  t.deepEqual(await addonsOf(t, ['create', '--help']), []);
});

test('init, ps and images load LevelDB alone: no BLAKE3, no xattr', async t => {
  const {store} = await template.copy(t);
  t.deepEqual(await addonsOf(t, ['init', '--store', path.join(await tempDir(t), 'fresh')]), ['leveldb']);
  t.deepEqual(await addonsOf(t, ['ps'], store), ['leveldb']);
  t.deepEqual(await addonsOf(t, ['images'], store), ['leveldb']);
});

test('create loads neither BLAKE3 (the image record it checks is hashed in TypeScript) nor xattr', async t => {
  const {store} = await template.copy(t);
  t.deepEqual(await addonsOf(t, ['create', 'base:1', '--name', 'other'], store), ['leveldb']);
});

test('reading a large file loads BLAKE3 to check it', async t => {
  const {store} = await template.copy(t);
  t.deepEqual(await addonsOf(t, ['cat', 'base:1', '/big.bin'], store), ['leveldb', 'blake3']);
});

test('a command that reads a writable layer loads xattr when it needs it (diff, fs write)', async t => {
  const {store} = await template.copy(t);
  t.deepEqual(await addonsOf(t, ['fs', 'web', 'write', '/etc/motd'], store, 'hi\n'), ['leveldb', 'xattr']);
  t.deepEqual(await addonsOf(t, ['diff', 'web'], store), ['leveldb', 'xattr']);
});

test('ps, create and diff load none of node:crypto, zlib, child_process, worker_threads and stream', async t => {
  const {store} = await template.copy(t);
  for (const args of [['ps'], ['create', 'base:1', '--name', 'other'], ['diff', 'web']]) {
    const {builtins} = await loadedBy(t, args, store);
    t.true(builtins.includes('fs'), 'the list is read'); // what the check below reads is there
    t.deepEqual(builtins.filter(m => /^(crypto|zlib|child_process|worker_threads|stream)$/.test(m)), [], `strata ${args.join(' ')}`);
  }
});

test('ps and images open the store without fs/promises (its first call loads it: ~1.5 ms)', async t => {
  const {store} = await template.copy(t);
  for (const args of [['ps'], ['images'], ['ps', '--json']]) {
    const {builtins} = await loadedBy(t, args, store);
    t.true(builtins.includes('fs'), 'the list is read');
    t.deepEqual(builtins.filter(m => m === 'fs/promises' || m === 'internal/fs/promises'), [], `strata ${args.join(' ')}`);
  }
});

test('where the BLAKE3 addon does not load, a command that hashes says so in one line; STRATA_HASH=wasm works; ps needs no hash', async t => {
  const {store} = await template.copy(t);
  // napi-rs's loader tries this path first; a missing one leaves it no binding (xattr's too).
  const broken = {NAPI_RS_NATIVE_LIBRARY_PATH: path.join(await tempDir(t), 'missing.node')};
  const r = await strata(['cat', 'base:1', '/big.bin'], {store, env: broken});
  t.is(r.code, 1);
  t.regex(r.stderr, /^strata: the native BLAKE3 addon \(@napi-rs\/blake-hash\) does not load here \(.*\); STRATA_HASH=wasm uses the WebAssembly build\n$/);
  t.is(r.stdout, '');
  const wasm = await strata(['cat', 'base:1', '/big.bin'], {store, env: {...broken, STRATA_HASH: 'wasm'}});
  t.deepEqual([wasm.code, wasm.stdout, wasm.stderr], [0, 'b'.repeat(100_000), '']);
  const ps = await strata(['ps', '--json'], {store, env: broken});
  t.is(ps.code, 0, ps.stderr);
});
