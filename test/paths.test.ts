import * as fs from 'node:fs';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {strata, tempDir} from './_cli.js';
import {mustRun, storeTemplate, writeTar} from './_fixtures.js';

/**
 * usr:1, a merged-/usr image as Debian's (/bin -> usr/bin, /lib -> usr/lib, /etc/hostname),
 * and the container web on it, with a few links to aim at.
 */
const template = storeTemplate(async (store, scratch) => {
  const tar = await writeTar(path.join(scratch, 'usr.tar'), [
    {name: 'usr/', type: '5'}, {name: 'usr/bin/', type: '5'}, {name: 'usr/bin/sh', content: 'sh\n'}, {name: 'usr/lib/', type: '5'},
    {name: 'bin', type: '2', linkname: 'usr/bin'}, {name: 'lib', type: '2', linkname: 'usr/lib'},
    {name: 'etc/', type: '5'}, {name: 'etc/hostname', content: 'usr\n'},
    {name: 'srv/', type: '5'}, {name: 'srv/site', type: '2', linkname: '/srv/www'}, {name: 'srv/www/', type: '5'},
    {name: 'motd', type: '2', linkname: 'etc/hostname'}, {name: 'dangling', type: '2', linkname: 'nowhere'},
  ]);
  await mustRun(['import', tar, '--tag', 'usr:1'], store);
  await mustRun(['create', 'usr:1', '--name', 'web'], store);
});

async function run(t: ExecutionContext, args: string[], store: string, input?: string): Promise<{code: number; stdout: string; stderr: string}> {
  return strata(args, {store, ...(input !== undefined ? {input} : {})});
}

async function ok(t: ExecutionContext, args: string[], store: string, input?: string): Promise<string> {
  const r = await run(t, args, store, input);
  t.is(r.code, 0, `strata ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A refused command: exit 1, one line naming what was wrong, and the container as it was. */
async function refused(t: ExecutionContext, args: string[], store: string, says: RegExp, input?: string): Promise<void> {
  const before = await ok(t, ['diff', 'web'], store);
  const r = await run(t, args, store, input);
  t.is(r.code, 1, `strata ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  t.regex(r.stderr, /^strata: [^\n]+\n$/);
  t.regex(r.stderr, says);
  t.is(await ok(t, ['diff', 'web'], store), before, `strata ${args.join(' ')} changed the container`);
}

test('a ".." after a symlink steps back from its target, as the kernel resolves it', async t => {
  const {store} = await template.copy(t);
  // /bin/../etc is /usr/bin/../etc = /usr/etc, which does not exist.
  await refused(t, ['fs', 'web', 'cat', '/bin/../etc/hostname'], store, /web:\/bin\/\.\.\/etc\/hostname: no such file or directory/);
  await refused(t, ['cat', 'usr:1', '/bin/../etc/hostname'], store, /no such file or directory/);
  await refused(t, ['fs', 'web', 'write', '/bin/../etc/hostname'], store, /no such file or directory/, 'x\n');
  t.is(await ok(t, ['cat', 'usr:1', '/bin/../bin/sh'], store), 'sh\n');
  t.is(await ok(t, ['ls', 'usr:1', '/bin/..'], store), 'bin\nlib\n');
  // A write through the link lands where the kernel would put it.
  await ok(t, ['fs', 'web', 'write', '/lib/../lib/x'], store, 'x\n');
  t.is(await ok(t, ['fs', 'web', 'cat', '/usr/lib/x'], store), 'x\n');
  await ok(t, ['cp', path.join(await hostFile(t, 'f', 'f\n')), 'web:/bin/../lib/'], store);
  t.is(await ok(t, ['fs', 'web', 'cat', '/usr/lib/f'], store), 'f\n');
  t.is(await ok(t, ['diff', 'web'], store), 'C /usr\nC /usr/lib\nA /usr/lib/f\nA /usr/lib/x\n');
});

test('a ".." above the root stays at the root, as in a chroot', async t => {
  const {store} = await template.copy(t);
  t.is(await ok(t, ['ls', 'usr:1', '../etc'], store), 'hostname\n');
  await ok(t, ['fs', 'web', 'write', '/../../etc/hostname'], store, 'clamped\n');
  t.is(await ok(t, ['fs', 'web', 'cat', '/etc/hostname'], store), 'clamped\n');
  await ok(t, ['cp', await hostFile(t, 'x', 'x\n'), 'web:../x'], store);
  t.is(await ok(t, ['fs', 'web', 'cat', '/x'], store), 'x\n');
});

test('cp into a destination ending in "/" needs a directory there, as cp(1)', async t => {
  const {store} = await template.copy(t);
  const file = await hostFile(t, 'f', 'f\n');
  await refused(t, ['cp', file, 'web:/etc/hostname/'], store, /web:\/etc\/hostname\/: not a directory/);
  await refused(t, ['cp', file, 'web:/motd/'], store, /web:\/motd\/: not a directory/); // a symlink to a file
  await refused(t, ['cp', file, 'web:/nodir/'], store, /web:\/nodir\/: not a directory/);
  await refused(t, ['cp', file, 'web:/dangling/'], store, /web:\/dangling\/: not a directory/);
  t.is(await ok(t, ['fs', 'web', 'cat', '/etc/hostname'], store), 'usr\n');
  // A directory there (also through a symlink) receives the file.
  await ok(t, ['cp', file, 'web:/etc/'], store);
  await ok(t, ['cp', file, 'web:/srv/site/'], store);
  t.is(await ok(t, ['fs', 'web', 'cat', '/etc/f'], store), 'f\n');
  t.is(await ok(t, ['fs', 'web', 'cat', '/srv/www/f'], store), 'f\n');
  // A directory source makes a missing "dir/".
  const tree = path.join(await tempDir(t), 'tree');
  fs.mkdirSync(tree);
  fs.writeFileSync(path.join(tree, 'a'), 'a\n');
  await ok(t, ['cp', tree, 'web:/new/'], store);
  t.is(await ok(t, ['fs', 'web', 'ls', '/new'], store), 'a\n');
  await refused(t, ['cp', tree, 'web:/motd/'], store, /not a directory/);
  // A source ending in "/" must be a directory too.
  await refused(t, ['cp', `${file}/`, 'web:/x'], store, /not a directory on the host/);
  await refused(t, ['cp', 'web:/etc/hostname/', path.join(path.dirname(file), 'out')], store, /web:\/etc\/hostname\/: not a directory/);
});

test('cp refuses to put a directory over a file or a file over a directory, before changing anything', async t => {
  const {store} = await template.copy(t);
  const dir = await tempDir(t);
  fs.mkdirSync(path.join(dir, 'hostname'));
  fs.writeFileSync(path.join(dir, 'hostname', 'x'), 'x\n');
  await refused(t, ['cp', path.join(dir, 'hostname'), 'web:/etc'], store, /cannot overwrite non-directory \/etc\/hostname with directory/);
  fs.mkdirSync(path.join(dir, 'tree', 'usr', 'bin', 'sh'), {recursive: true});
  fs.writeFileSync(path.join(dir, 'tree', 'aaa'), 'first in the walk\n');
  // Deep in the tree: usr/bin/sh is a file in the view; nothing of the tree is written.
  await refused(t, ['cp', `${path.join(dir, 'tree')}/.`, 'web:/'], store, /cannot overwrite non-directory \/usr\/bin\/sh with directory/);
  await refused(t, ['cp', await hostFile(t, 'etc', 'etc\n'), 'web:/'], store, /cannot overwrite directory \/etc with non-directory/);
});

test('cp out to a host destination ending in "/" needs a directory there, as cp(1)', async t => {
  const {store} = await template.copy(t);
  const dir = await tempDir(t);
  fs.writeFileSync(path.join(dir, 'file'), 'file\n');
  await refused(t, ['cp', 'web:/etc/hostname', `${path.join(dir, 'nodir')}/`], store, /not a directory on the host/);
  await refused(t, ['cp', 'web:/etc/hostname', `${path.join(dir, 'file')}/`], store, /not a directory on the host/);
  await refused(t, ['cp', 'web:/etc', `${path.join(dir, 'file')}/`], store, /not a directory on the host/);
  t.false(fs.existsSync(path.join(dir, 'nodir')));
  t.is(fs.readFileSync(path.join(dir, 'file'), 'utf8'), 'file\n');
  await ok(t, ['cp', 'web:/etc/hostname', `${dir}/`], store);
  t.is(fs.readFileSync(path.join(dir, 'hostname'), 'utf8'), 'usr\n');
  await ok(t, ['cp', 'web:/etc', `${path.join(dir, 'etc-copy')}/`], store);
  t.deepEqual(fs.readdirSync(path.join(dir, 'etc-copy')), ['hostname']);
  // A ".." in the source resolves after the symlink, and the copy is named after what it found.
  await ok(t, ['cp', 'web:/bin/..', `${dir}/`], store);
  t.deepEqual(fs.readdirSync(path.join(dir, 'usr')).sort(), ['bin', 'lib']);
});

async function hostFile(t: ExecutionContext, name: string, content: string): Promise<string> {
  const file = path.join(await tempDir(t), name);
  fs.writeFileSync(file, content);
  return file;
}
