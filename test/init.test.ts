import * as path from 'node:path';
import test from 'ava';
import {strata, tempDir} from './_cli.js';

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
