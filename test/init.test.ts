import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import {STRATA_BIN, strata, tempDir} from './_cli.js';

test('init creates a store and is idempotent', async t => {
  const store = path.join(await tempDir(t), 'store');
  const first = await strata(['init', '--json', '--store', store]);
  t.is(first.code, 0, first.stderr);
  t.deepEqual(JSON.parse(first.stdout), {store});
  t.is((await strata(['init', '--store', store])).code, 0);
});

test('an unknown option is a usage error on stderr with exit 2', async t => {
  const r = await strata(['init', '--bogus']);
  t.is(r.code, 2);
  t.is(r.stdout, '');
  t.regex(r.stderr, /Unsupported option name/);
});

test('a store directory that is not a store is refused without a stack', async t => {
  const dir = await tempDir(t);
  await import('node:fs/promises').then(fs => fs.writeFile(path.join(dir, 'x'), 'x'));
  const r = await strata(['init', '--store', dir]);
  t.is(r.code, 1);
  t.regex(r.stderr, /^strata: .*not empty and is not a strata store\n$/);
});

test('init syncs strata.json before it is renamed into place, then the store directory; no temporary file stays', async t => {
  // The durability init promises (docs/design.md, "init's syncs overlap"): read from the
  // process's own syscalls (strace -y names each descriptor's file).
  const dir = await tempDir(t);
  const store = path.join(dir, 'store');
  const log = path.join(dir, 'strace.log');
  const r = spawnSync('strace', ['-f', '-y', '-qq', '-o', log, '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2', STRATA_BIN, 'init', '--store', store], {encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}});
  if (r.error) throw new Error(`strace (Debian strace) is needed for this test: ${r.error.message}`);
  t.is(r.status, 0, r.stderr);
  const calls = fs.readFileSync(log, 'utf8').split('\n').map(l => l.replace(/^\d+\s+/, ''));
  const renamed = calls.findIndex(l => /^rename(at2?)?\(.*strata\.json\.\d+", .*"[^"]*\/strata\.json"/.test(l));
  t.true(renamed >= 0, 'strata.json is renamed into place');
  const synced = (file: string) => (l: string) => l.startsWith('fsync(') || l.startsWith('fdatasync(') ? l.includes(`<${file}>`) : false;
  t.true(calls.slice(0, renamed).some(l => /^f(data)?sync\(\d+<.*\/strata\.json\.\d+>/.test(l)), 'the marker\'s bytes are synced before the rename');
  t.true(calls.slice(renamed + 1).some(synced(fs.realpathSync(store))), 'the store directory is synced after the rename');
  t.deepEqual(fs.readdirSync(store).filter(f => f.startsWith('strata.json.')), []);
  for (const sub of ['objects', 'tmp', 'containers', 'index']) t.true(fs.statSync(path.join(store, sub)).isDirectory(), sub);
  t.true(fs.existsSync(path.join(store, 'index', 'CURRENT')), 'LevelDB made the index');
});
