import {spawn} from 'node:child_process';
import {once} from 'node:events';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {STRATA_BIN, strata} from './_cli.js';
import {jsonOf, mustRun, storeState, storeTemplate, writeTar, writeTree} from './_fixtures.js';

const BIG = Buffer.alloc(300_000, 'abcdefgh').toString('latin1'); // above the inline limit: an object file

/** base:1 from a directory; app:1 adds a layer (a tar) that whites out /etc/motd and shadows /etc/hostname. */
const template = storeTemplate(async (store, scratch) => {
  await writeTree(path.join(scratch, 'base'), {'etc/hostname': 'base\n', 'etc/motd': 'hello\n', 'big.bin': BIG, 'home': null});
  await mustRun(['import', path.join(scratch, 'base'), '--tag', 'base:1'], store);
  const tar = await writeTar(path.join(scratch, 'app.tar'), [
    {name: 'etc/', type: '5'},
    {name: 'etc/hostname', content: 'app\n'},
    {name: 'etc/.wh.motd'},
    {name: 'etc/issue', type: '2', linkname: 'hostname'},
  ]);
  await mustRun(['import', tar, '--on', 'base:1', '--tag', 'app:1'], store);
});

async function stacked(t: ExecutionContext): Promise<string> {
  return (await template.copy(t)).store;
}

test('ls lists the merged directory: whiteouts hide, higher layers shadow', async t => {
  const store = await stacked(t);
  t.is((await strata(['ls', 'app:1', '/etc'], {store})).stdout, 'hostname\nissue\n');
  t.is((await strata(['ls', 'base:1', 'etc'], {store})).stdout, 'hostname\nmotd\n');
  t.is((await strata(['ls', 'app:1'], {store})).stdout, 'big.bin\netc\nhome\n');
  const etc = jsonOf<{name: string; kind: string; size: number; target?: string}[]>(t, await strata(['ls', 'app:1', '/etc', '--json'], {store}));
  t.deepEqual(etc.map(({name, kind, size, target}) => ({name, kind, size, target})), [
    {name: 'hostname', kind: 'file', size: 4, target: undefined},
    {name: 'issue', kind: 'symlink', size: 0, target: 'hostname'},
  ]);
});

test('ls -l shows modes, sizes and link targets; a file path shows itself', async t => {
  const store = await stacked(t);
  const long = await strata(['ls', 'app:1', '/etc', '-l'], {store});
  t.is(long.code, 0, long.stderr);
  // The tar's entries: owner 0:0, mtime 1,700,000,000 (UTC), symlink mode as the archive says.
  t.is(long.stdout, '-rw-r--r--  0:0  4 B  2023-11-14 22:13  hostname\nlrw-r--r--  0:0       2023-11-14 22:13  issue -> hostname\n');
  t.is((await strata(['ls', 'app:1', '/big.bin'], {store})).stdout, 'big.bin\n');
});

test('cat prints a file through the layers, following symlinks inside the view', async t => {
  const store = await stacked(t);
  t.is((await strata(['cat', 'app:1', '/etc/hostname'], {store})).stdout, 'app\n');
  t.is((await strata(['cat', 'app:1', '/etc/issue'], {store})).stdout, 'app\n');
  t.is((await strata(['cat', 'base:1', '/etc/hostname'], {store})).stdout, 'base\n');
  const big = await strata(['cat', 'app:1', 'big.bin'], {store});
  t.is(big.code, 0, big.stderr);
  t.true(big.stdout === BIG, 'a large file comes out byte for byte');
});

test('cat stops quietly when its reader goes away', async t => {
  const store = await stacked(t);
  const child = spawn(STRATA_BIN, ['cat', 'app:1', '/big.bin'], {env: {...process.env, STRATA_STORE: store, NO_COLOR: '1'}});
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', d => { stderr += d; });
  child.stdout.once('data', () => child.stdout.destroy()); // as `| head -c 1` does
  const [code] = await once(child, 'close');
  t.is(stderr, '');
  t.is(code, 0);
});

const refused = test.macro(async (t, args: string[], message: RegExp) => {
  const store = await stacked(t);
  const before = await storeState(t, store);
  const r = await strata(args, {store});
  t.is(r.code, 1, r.stderr);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^strata: [^\n]+\n$/);
  t.regex(r.stderr, message);
  t.deepEqual(await storeState(t, store), before);
});

test('cat of a whited-out file is refused', refused, ['cat', 'app:1', '/etc/motd'], /^strata: app:1:\/etc\/motd: no such file or directory \(open\)\n$/);
test('cat of a directory is refused', refused, ['cat', 'app:1', '/etc'], /^strata: app:1:\/etc: is a directory \(read\)\n$/);
test('ls of a missing path is refused', refused, ['ls', 'app:1', '/nope'], /^strata: app:1:\/nope: no such file or directory \(lstat\)\n$/);
test('ls of an unknown image is refused', refused, ['ls', 'nope:1'], /no container or image "nope:1"/);
