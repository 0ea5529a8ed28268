import {execFileSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'ava';
import {strata, tempDir} from './_cli.js';
import {requirePeers} from './_busybox.js';

// A store written by strata before small-blob packs (test/fixtures/make-store-before-packs.sh
// made it with 8468ae2): its metadata image has no pack list and its 10 KB file was spilled
// to objects/small/. This strata opens it, verifies it, mounts its container (building the
// image again, with a pack), and its gc drops the old derived files; nothing else changes.

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

test('a store from before packs opens, verifies, mounts with its contents and changes, and gc drops its spilled files', async t => {
  requirePeers('perl');
  const dir = await tempDir(t);
  execFileSync('tar', ['-C', dir, '-xzf', path.join(FIXTURES, 'store-before-packs.tar.gz')]);
  const store = path.join(dir, 'store');
  const oldImages = fs.readdirSync(path.join(store, 'meta'));
  t.is(fs.readdirSync(path.join(store, 'objects', 'small')).length, 1, 'the fixture holds a spilled file');
  const verified = await strata(['verify'], {store});
  t.is(verified.code, 0, verified.stdout + verified.stderr);
  t.is((await strata(['diff', 'web'], {store})).stdout, 'C /etc\nC /etc/hostname\n');

  t.teardown(() => strata(['umount', 'web'], {store}));
  const mounted = await strata(['mount', 'web'], {store});
  t.is(mounted.code, 0, mounted.stderr);
  const at = mounted.stdout.trim();
  t.is(fs.readFileSync(path.join(at, 'etc', 'hostname'), 'utf8'), 'changed\n');
  t.is(fs.readFileSync(path.join(at, 'etc', 'small'), 'utf8'), 's'.repeat(10_000));
  t.is(fs.readFileSync(path.join(at, 'bin', 'big'), 'utf8'), 'x'.repeat(40_000));
  t.is(fs.readdirSync(path.join(store, 'packs')).filter(n => n.endsWith('.erofs')).length, 1, 'the spilled blob went into a pack');
  t.is((await strata(['umount', 'web'], {store})).code, 0);

  const gc = await strata(['gc', '--json'], {store});
  t.is(gc.code, 0, gc.stderr);
  t.false(fs.existsSync(path.join(store, 'objects', 'small')), 'gc dropped the spilled files');
  t.deepEqual(fs.readdirSync(path.join(store, 'meta')), oldImages, 'the image built again has the old one\'s name');
  t.is((await strata(['verify'], {store})).code, 0);
  t.is((await strata(['cat', 'base:1', '/etc/small'], {store})).stdout, 's'.repeat(10_000));
  t.is((await strata(['diff', 'web'], {store})).stdout, 'C /etc\nC /etc/hostname\n');
});
