import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test from 'ava';
import {type Digest, Store} from '@strata/store';
import {runCli, tempDir, tempStore} from './_run.js';

/** A user mistake: exit 2, one line on stderr, nothing on stdout. */
const usageError = test.macro(async (t, args: string[], message: RegExp) => {
  const store = path.join(await tempDir(t), 'no-store');
  const r = await runCli([...args, '--store', store]);
  t.is(r.code, 2, r.stderr);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^strata: [^\n]+\n$/);
  t.regex(r.stderr, message);
  // Checked before the store is opened: nothing was created.
  t.false(await fs.stat(store).then(() => true, () => false));
});

test('import --tag with an upper-case name', usageError, ['import', '.', '--tag', 'App:1'], /"App:1" is not a valid name:tag/);
test('import --tag with an empty tag', usageError, ['import', '.', '--tag', 'app:'], /not a valid name:tag/);
test('import --on without --tag', usageError, ['import', '.', '--on', 'base:1'], /--on needs --tag/);
test('import --message without --tag', usageError, ['import', '.', '-m', 'hi'], /--message needs --tag/);
test('image tag to a bad name', usageError, ['image', 'tag', 'x', 'a b'], /"a b" is not a valid name:tag/);

test('a missing positional argument is a usage error', async t => {
  const r = await runCli(['image', 'inspect']);
  t.is(r.code, 2);
  t.is(r.stdout, '');
});

test('image rm refuses an image a container uses, and removes nothing', async t => {
  const store = await tempStore(t);
  const src = await tempDir(t);
  await fs.writeFile(path.join(src, 'a.txt'), 'a');
  t.is((await runCli(['import', src, '--tag', 'base:1', '--store', store])).code, 0);
  t.is((await runCli(['import', src, '--tag', 'other:1', '--on', 'base:1', '--store', store])).code, 0);
  const images = await runCli(['images', '--json', '--store', store]);
  const base = (JSON.parse(images.stdout) as {id: string; tags: string[]}[]).find(i => i.tags.includes('base:1'))!;
  const s = await Store.open(store);
  await s.putContainer({id: 'c0ffee', name: 'web', image: base.id as Digest, created: new Date(0).toISOString()});
  await s.close();

  const r = await runCli(['image', 'rm', 'other:1', 'base:1', '--store', store]);
  t.is(r.code, 1);
  t.is(r.stderr, 'strata: image base:1 is used by container web; remove the container first\n');
  t.is((await runCli(['images', '--json', '--store', store])).stdout, images.stdout);
  // Another tag of the same image can go: the image stays.
  t.is((await runCli(['image', 'tag', 'base:1', 'base:2', '--store', store])).code, 0);
  t.is((await runCli(['image', 'rm', 'base:2', '--store', store])).stdout, 'untagged base:2\n');
});
