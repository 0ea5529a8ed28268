import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'ava';
import {strata, tempDir} from './_cli.js';
import {jsonOf} from './_fixtures.js';

/**
 * A store made by strata before store format 2 (writable layers with `.wh.` marker files),
 * kept as a tar: base:1 (a directory import) and the container "web" on it, which deleted
 * /etc/motd, replaced /usr/share/doc/a by a new directory (opaque), wrote
 * /usr/share/doc/a/NEW and /etc/hostname, renamed /var/cache (a lower directory) to
 * /var/cache2 and chmodded /usr/big.bin. The expected answers below are what that strata
 * printed for the same store (diff, checkout listing, commit's layer id).
 */
const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'store-v1.tar.gz');

const DIFF_BEFORE = `C /etc
C /etc/hostname
D /etc/motd
C /usr
C /usr/big.bin
C /usr/share
C /usr/share/doc
C /usr/share/doc/a
D /usr/share/doc/a/COPYING
A /usr/share/doc/a/NEW
D /usr/share/doc/a/README
C /var
D /var/cache
A /var/cache2
A /var/cache2/x
`;
const CHECKOUT_BEFORE = [
  'd 755 0:0 1700000000 .',
  'd 755 0:0 1700000000 ./usr',
  'd 755 0:0 1700000000 ./usr/share',
  'd 755 0:0 1796114915 ./etc',
  'd 755 0:0 1796114916 ./usr/share/doc',
  'd 755 0:0 1796114917 ./usr/share/doc/a',
  'd 755 0:0 1796114918 ./var',
  'd 755 0:0 1796114918 ./var/cache2',
  'f 644 0:0 1700000000 2 ./var/cache2/x',
  'f 644 0:0 1796114917 4 ./usr/share/doc/a/NEW',
  'f 644 0:0 1796114918 8 ./etc/hostname',
  'f 700 0:0 1700000000 40000 ./usr/big.bin',
].sort();
const LAYER_BEFORE = 'b3:a299ebbe1c20f5a3829a40ab6d2385d08f3d9411933131b79a4f0bfa06f3554b';

test('a format-1 store is upgraded on open: its container shows, diffs and commits exactly as before', async t => {
  const dir = await tempDir(t);
  const untar = spawnSync('tar', ['-xzf', FIXTURE, '-C', dir], {encoding: 'utf8'});
  t.is(untar.status, 0, untar.stderr);
  const store = path.join(dir, 'store');
  t.deepEqual(JSON.parse(fs.readFileSync(path.join(store, 'strata.json'), 'utf8')), {format: 1});

  const diff = await strata(['diff', 'web'], {store});
  t.is(diff.code, 0, diff.stderr);
  t.is(diff.stdout, DIFF_BEFORE);
  t.deepEqual(JSON.parse(fs.readFileSync(path.join(store, 'strata.json'), 'utf8')), {format: 3}); // the current format: 1 -> 2 -> 3

  // The upper holds the kernel's form now, and no marker file.
  const upper = path.join(store, 'containers', fs.readdirSync(path.join(store, 'containers'))[0]!, 'upper');
  const motd = fs.lstatSync(path.join(upper, 'etc', 'motd'));
  t.true(motd.isCharacterDevice() && motd.rdev === 0, 'a whiteout is a 0/0 character device');
  t.true(fs.lstatSync(path.join(upper, 'var', 'cache')).isCharacterDevice());
  t.is(getfattr(path.join(upper, 'usr/share/doc/a')), 'y');
  t.is(getfattr(path.join(upper, 'var/cache2')), 'y');
  const markers = spawnSync('find', [upper, '-name', '.wh.*'], {encoding: 'utf8'}).stdout;
  t.is(markers, '');

  const out = path.join(dir, 'out');
  const co = await strata(['checkout', 'web', out], {store});
  t.is(co.code, 0, co.stderr);
  t.deepEqual(listing(out), CHECKOUT_BEFORE);

  const commit = jsonOf<{layer: string}>(t, await strata(['commit', 'web', '--json'], {store}));
  t.is(commit.layer, LAYER_BEFORE, 'the same changes give the same layer as before the upgrade');
  const verify = await strata(['verify'], {store});
  t.is(verify.code, 0, verify.stdout + verify.stderr);
});

test('an upgrade cut short is finished by the next open', async t => {
  const dir = await tempDir(t);
  t.is(spawnSync('tar', ['-xzf', FIXTURE, '-C', dir]).status, 0);
  const store = path.join(dir, 'store');
  const upper = path.join(store, 'containers', fs.readdirSync(path.join(store, 'containers'))[0]!, 'upper');
  // As if killed after converting one marker: its whiteout exists, the marker too.
  spawnSync('mknod', [path.join(upper, 'etc', 'motd'), 'c', '0', '0']);
  const diff = await strata(['diff', 'web'], {store});
  t.is(diff.code, 0, diff.stderr);
  t.is(diff.stdout, DIFF_BEFORE);
});

function getfattr(p: string): string | undefined {
  const r = spawnSync('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', p], {encoding: 'utf8'});
  return r.status === 0 ? r.stdout : undefined;
}

function listing(root: string): string[] {
  const r = spawnSync('find', ['.', '-printf', '%y %m %U:%G %T@ %s %p\\n'], {cwd: root, encoding: 'utf8'});
  return r.stdout.trim().split('\n').map(l => {
    const [y, m, o, time, size, p] = l.split(' ');
    return [y, m, o, String(Math.floor(Number(time))), ...(y === 'f' ? [size] : []), p].join(' ');
  }).sort();
}
