import {randomBytes} from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import {STRATA_BIN, strata, tempStore} from './_cli.js';

// The bundled CLI is compiled from V8's code caches beside it (scripts/bundle.js,
// packages/cli/bin/strata.js). A cache is only ever an aid: a damaged one, or none that
// this user may write, must leave every command as it is. Serial: the cache files are
// the bundle's own, shared by every strata process of this checkout.
const BUNDLE = path.join(path.dirname(fs.realpathSync(STRATA_BIN)), '..', 'dist', 'bundle');
const FRONT_CACHE = path.join(BUNDLE, 'strata.cjs.cache');

function bundleFiles(): string[] {
  if (!fs.existsSync(path.join(BUNDLE, 'strata.cjs'))) throw new Error(`no bundle at ${BUNDLE}: run node scripts/bundle.js (scripts/test.js does)`);
  return fs.readdirSync(BUNDLE);
}

test.serial('a damaged code cache is passed over and written anew; the command works as before', async t => {
  bundleFiles();
  const want = await strata(['--help']);
  t.is(want.code, 0, want.stderr);
  const garbage = randomBytes(4096);
  fs.writeFileSync(FRONT_CACHE, garbage);
  const r = await strata(['--help']);
  t.deepEqual([r.code, r.stdout, r.stderr], [0, want.stdout, '']);
  t.false(fs.readFileSync(FRONT_CACHE).equals(garbage));
  t.true(fs.statSync(FRONT_CACHE).size > 10_000);
});

test.serial('a command that loads the packages works with their cache damaged, and writes it anew', async t => {
  bundleFiles();
  // The packages' file the command line names (an older one may still lie beside it).
  const lib = /__strataPackage\("(lib-[0-9a-f]+\.cjs)"/.exec(fs.readFileSync(path.join(BUNDLE, 'strata.cjs'), 'utf8'))?.[1];
  if (!lib) throw new Error(`strata.cjs in ${BUNDLE} names no lib-<hash>.cjs`);
  const store = await tempStore(t);
  const garbage = randomBytes(4096);
  fs.writeFileSync(path.join(BUNDLE, `${lib}.cache`), garbage);
  const r = await strata(['ps', '--json'], {store});
  t.deepEqual([r.code, JSON.parse(r.stdout), r.stderr], [0, [], '']);
  t.false(fs.readFileSync(path.join(BUNDLE, `${lib}.cache`)).equals(garbage));
});

test.serial('a user who cannot write the bundle directory runs strata without a cache, leaving nothing behind', async t => {
  bundleFiles();
  fs.rmSync(FRONT_CACHE, {force: true});
  const r = await strata(['--help'], {user: 65534});
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^strata - /);
  // Nothing of that user's: other strata processes of the suite, running beside this test
  // on a fresh build, may be writing their own caches (root's temporary files) meanwhile.
  t.deepEqual(bundleFiles().filter(f => fs.lstatSync(path.join(BUNDLE, f), {throwIfNoEntry: false})?.uid === 65534), []);
  // The next run of a user who may write puts it back.
  t.is((await strata(['--help'])).code, 0);
  t.true(fs.existsSync(FRONT_CACHE));
});
