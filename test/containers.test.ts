import * as fs from 'node:fs';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {strata, tempDir} from './_cli.js';
import {jsonOf, mustRun, storeTemplate, writeTar, writeTree} from './_fixtures.js';
import {readHostTree} from './_tree.js';

/**
 * base:1 (a directory: /etc/hostname, /etc/motd, /bin/busybox and its hardlink /bin/sh,
 * /home) and app:1 = base:1 + a tar layer that shadows /etc/hostname, whites out
 * /etc/motd and adds the symlink /etc/issue.
 */
const template = storeTemplate(async (store, scratch) => {
  const base = path.join(scratch, 'base');
  await writeTree(base, {'etc/hostname': 'base\n', 'etc/motd': 'hello\n', 'bin/busybox': 'BB\n', 'home': null});
  fs.linkSync(path.join(base, 'bin/busybox'), path.join(base, 'bin/sh'));
  fs.chmodSync(path.join(base, 'bin/busybox'), 0o755);
  await mustRun(['import', base, '--tag', 'base:1'], store);
  const tar = await writeTar(path.join(scratch, 'app.tar'), [
    {name: 'etc/', type: '5'},
    {name: 'etc/hostname', content: 'app\n'},
    {name: 'etc/.wh.motd'},
    {name: 'etc/issue', type: '2', linkname: 'hostname'},
  ]);
  await mustRun(['import', tar, '--on', 'base:1', '--tag', 'app:1'], store);
  await mustRun(['create', 'app:1', '--name', 'web'], store);
});

async function withWeb(t: ExecutionContext): Promise<string> {
  return (await template.copy(t)).store;
}

async function ok(t: ExecutionContext, args: string[], store: string, input?: string): Promise<string> {
  const r = await strata(args, {store, ...(input !== undefined ? {input} : {})});
  t.is(r.code, 0, `strata ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('create prints an id; --json the record; ps lists it with its image tag', async t => {
  const store = await withWeb(t);
  const id = (await ok(t, ['create', 'base:1'], store)).trim();
  t.regex(id, /^[0-9a-f]{32}$/);
  const db = jsonOf<{id: string; name: string; image: string}>(t, await strata(['create', 'app:1', '--name', 'db', '--json'], {store}));
  t.is(db.name, 'db');
  t.regex(db.image, /^b3:[0-9a-f]{64}$/);
  const ps = jsonOf<{id: string; name: string | null; tags: string[]}[]>(t, await strata(['ps', '--json'], {store}));
  t.deepEqual(ps.map(c => [c.name, c.tags]), [['web', ['app:1']], [null, ['base:1']], ['db', ['app:1']]]);
  const table = (await ok(t, ['ps'], store)).split('\n');
  t.regex(table[0]!, /^ID\s+NAME\s+IMAGE\s+CREATED\s+STATUS$/);
  t.regex(table[3]!, new RegExp(`^${db.id.slice(0, 12)}  db    app:1\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d  stopped$`));
});

test('rm removes containers by name and id prefix; the image stays', async t => {
  const store = await withWeb(t);
  const id = (await ok(t, ['create', 'base:1'], store)).trim();
  const removed = jsonOf<{id: string; name: string | null}[]>(t, await strata(['rm', 'web', id.slice(0, 8), '--json'], {store}));
  t.deepEqual(removed.map(c => c.name), ['web', null]);
  t.deepEqual(JSON.parse(await ok(t, ['ps', '--json'], store)), []);
  t.is(await ok(t, ['cat', 'app:1', '/etc/hostname'], store), 'app\n');
  // The name is free again.
  await ok(t, ['create', 'app:1', '--name', 'web'], store);
});

test('fs ls, cat and stat read through the container; both argument orders work', async t => {
  const store = await withWeb(t);
  t.is(await ok(t, ['fs', 'web', 'ls', '/etc'], store), 'hostname\nissue\n');
  t.is(await ok(t, ['fs', 'ls', 'web', 'etc'], store), 'hostname\nissue\n');
  const listed = JSON.parse(await ok(t, ['fs', 'web', 'ls', '/etc', '--json'], store)) as {name: string; kind: string; target?: string}[];
  t.deepEqual(listed.map(e => [e.name, e.kind, e.target]), [['hostname', 'file', undefined], ['issue', 'symlink', 'hostname']]);
  t.regex(await ok(t, ['fs', 'web', 'ls', '-l', '/bin'], store), /^-rwxr-xr-x  0:0  3 B  .* busybox\n/);
  t.is(await ok(t, ['fs', 'web', 'cat', '/etc/issue'], store), 'app\n');
  const st = JSON.parse(await ok(t, ['fs', 'web', 'stat', '/etc/issue', '--json'], store)) as Record<string, unknown>;
  t.like(st, {path: '/etc/issue', kind: 'symlink', target: 'hostname', layer: 'image'});
  t.regex(await ok(t, ['fs', 'web', 'stat', '/bin/busybox'], store), /mode\s+-rwxr-xr-x \(0755\)\n/);
});

test('fs write creates and replaces files from stdin; a lower file is copied up, the image untouched', async t => {
  const store = await withWeb(t);
  await ok(t, ['fs', 'web', 'write', '/etc/hostname'], store, 'web\n');
  await ok(t, ['fs', 'web', 'write', '/home/run.sh', '--mode', '750'], store, '#!/bin/sh\n');
  t.is(await ok(t, ['fs', 'web', 'cat', '/etc/hostname'], store), 'web\n');
  t.is(await ok(t, ['cat', 'app:1', '/etc/hostname'], store), 'app\n');
  t.like(JSON.parse(await ok(t, ['fs', 'web', 'stat', '/home/run.sh', '--json'], store)), {mode: 0o750, size: 10, layer: 'container'});
  t.like(JSON.parse(await ok(t, ['fs', 'web', 'stat', '/etc/hostname', '--json'], store)), {mode: 0o644, layer: 'container'});
});

test('fs rm, mkdir, mv, ln and chmod change the container as the commands say', async t => {
  const store = await withWeb(t);
  await ok(t, ['fs', 'web', 'rm', '/etc/issue'], store);
  await ok(t, ['fs', 'web', 'mkdir', '-p', '/srv/www/static'], store);
  await ok(t, ['fs', 'web', 'mkdir', '/srv/logs'], store);
  await ok(t, ['fs', 'web', 'mv', '/bin', '/sbin'], store); // a lower directory
  await ok(t, ['fs', 'web', 'mv', '/etc/hostname', '/srv'], store); // into a directory, as mv(1)
  await ok(t, ['fs', 'web', 'ln', '-s', '/srv/hostname', '/etc/name'], store);
  await ok(t, ['fs', 'web', 'ln', '/sbin/busybox', '/srv/bb'], store);
  await ok(t, ['fs', 'web', 'chmod', '700', '/srv/www'], store);
  await ok(t, ['fs', 'web', 'rm', '-r', '/home'], store);
  t.is(await ok(t, ['fs', 'web', 'ls', '/'], store), 'etc\nsbin\nsrv\n');
  t.is(await ok(t, ['fs', 'web', 'ls', '/srv'], store), 'bb\nhostname\nlogs\nwww\n');
  t.is(await ok(t, ['fs', 'web', 'cat', '/etc/name'], store), 'app\n');
  t.is(await ok(t, ['fs', 'web', 'cat', '/srv/bb'], store), 'BB\n');
  t.is(await ok(t, ['fs', 'web', 'ls', '/sbin'], store), 'busybox\nsh\n');
  t.like(JSON.parse(await ok(t, ['fs', 'web', 'stat', '/srv/www', '--json'], store)), {kind: 'dir', mode: 0o700});
  t.is(await ok(t, ['diff', 'web'], store), [
    'D /bin', 'C /etc', 'D /etc/hostname', 'D /etc/issue', 'A /etc/name', 'D /home', 'A /sbin', 'A /sbin/busybox', 'A /sbin/sh',
    'A /srv', 'A /srv/bb', 'A /srv/hostname', 'A /srv/logs', 'A /srv/www', 'A /srv/www/static', '',
  ].join('\n'));
  // The image shows none of it.
  t.is(await ok(t, ['ls', 'app:1'], store), 'bin\netc\nhome\n');
});

test('cp copies a host tree in and out with modes, symlinks and hardlinks', async t => {
  const store = await withWeb(t);
  const dir = await tempDir(t);
  const host = path.join(dir, 'site');
  await writeTree(host, {'index.html': '<h1>hi</h1>\n', 'cgi/run': '#!/bin/sh\n', 'empty': null});
  fs.chmodSync(path.join(host, 'cgi/run'), 0o755);
  fs.chmodSync(path.join(host, 'cgi'), 0o750);
  fs.symlinkSync('index.html', path.join(host, 'home.html'));
  fs.linkSync(path.join(host, 'index.html'), path.join(host, 'cgi/index.html'));
  // To a missing path whose parent exists: the tree is created there, as cp -r does.
  await ok(t, ['cp', host, 'web:/www'], store);
  t.is(await ok(t, ['fs', 'web', 'ls', '/www'], store), 'cgi\nempty\nhome.html\nindex.html\n');
  // Into an existing directory: under its own name.
  await ok(t, ['fs', 'web', 'mkdir', '/srv'], store);
  t.like(JSON.parse(await ok(t, ['cp', host, 'web:/srv', '--json'], store)), {files: 2, dirs: 3, symlinks: 1, hardlinks: 1});
  t.is(await ok(t, ['fs', 'web', 'ls', '/srv/site'], store), 'cgi\nempty\nhome.html\nindex.html\n');
  t.like(JSON.parse(await ok(t, ['fs', 'web', 'stat', '/srv/site/cgi', '--json'], store)), {mode: 0o750});
  t.like(JSON.parse(await ok(t, ['fs', 'web', 'stat', '/srv/site/cgi/run', '--json'], store)), {mode: 0o755});
  t.like(JSON.parse(await ok(t, ['fs', 'web', 'stat', '/srv/site/home.html', '--json'], store)), {kind: 'symlink', target: 'index.html'});
  // Out again, into a new directory: the same tree.
  const out = path.join(dir, 'out');
  await ok(t, ['cp', 'web:/srv/site', out], store);
  t.deepEqual(readHostTree(out), readHostTree(host));
  // A single file out, into an existing directory, and in again over a lower file.
  await ok(t, ['cp', 'web:/etc/hostname', dir], store);
  t.is(fs.readFileSync(path.join(dir, 'hostname'), 'utf8'), 'app\n');
  fs.writeFileSync(path.join(dir, 'hostname'), 'copied\n');
  await ok(t, ['cp', path.join(dir, 'hostname'), 'web:/etc/hostname'], store);
  t.is(await ok(t, ['fs', 'web', 'cat', '/etc/hostname'], store), 'copied\n');
  // Out of an image too.
  await ok(t, ['cp', 'app:1:/bin', path.join(dir, 'bin')], store);
  t.deepEqual(readHostTree(path.join(dir, 'bin')), {
    busybox: {kind: 'file', mode: 0o755, content: 'BB\n', links: 2},
    sh: {kind: 'file', mode: 0o755, content: 'BB\n', links: 2},
  });
});

test('diff compares a container with its image, two containers, a container with an image, and two images', async t => {
  const store = await withWeb(t);
  await ok(t, ['create', 'app:1', '--name', 'db'], store);
  await ok(t, ['fs', 'web', 'write', '/etc/hostname'], store, 'web\n');
  await ok(t, ['fs', 'web', 'mkdir', '/srv'], store);
  await ok(t, ['fs', 'db', 'rm', '/bin/sh'], store);
  t.is(await ok(t, ['diff', 'web'], store), 'C /etc\nC /etc/hostname\nA /srv\n');
  t.deepEqual(JSON.parse(await ok(t, ['diff', 'db', '--json'], store)), [{kind: 'C', path: '/bin'}, {kind: 'D', path: '/bin/sh'}]);
  t.is(await ok(t, ['diff', 'web', 'db'], store), 'C /bin\nD /bin/sh\nC /etc\nC /etc/hostname\nD /srv\n');
  t.is(await ok(t, ['diff', 'base:1', 'web'], store), 'C /etc\nC /etc/hostname\nA /etc/issue\nD /etc/motd\nA /srv\n');
  t.is(await ok(t, ['diff', 'base:1', 'app:1'], store), 'C /etc\nC /etc/hostname\nA /etc/issue\nD /etc/motd\n');
  t.is(await ok(t, ['diff', 'app:1', 'app:1'], store), '');
});

test('commit makes an image that shows what the container showed; the same changes give the same layer', async t => {
  const store = await withWeb(t);
  const dir = await tempDir(t);
  await ok(t, ['fs', 'web', 'write', '/etc/hostname'], store, 'web\n');
  await ok(t, ['fs', 'web', 'rm', '-r', '/home'], store);
  await ok(t, ['fs', 'web', 'mv', '/bin', '/sbin'], store);
  await ok(t, ['fs', 'web', 'ln', '-s', '../sbin/sh', '/etc/shell'], store);
  const first = JSON.parse(await ok(t, ['commit', 'web', '--tag', 'web:1', '--message', 'hostname', '--json'], store)) as {layer: string; image: string; tag: string};
  t.is(first.tag, 'web:1');
  const second = JSON.parse(await ok(t, ['commit', 'web', '--json'], store)) as {layer: string; image: string};
  t.is(second.layer, first.layer);
  await ok(t, ['checkout', 'web', path.join(dir, 'container')], store);
  await ok(t, ['checkout', 'web:1', path.join(dir, 'image')], store);
  t.deepEqual(readHostTree(path.join(dir, 'image')), readHostTree(path.join(dir, 'container')));
  t.is(await ok(t, ['diff', 'web', 'web:1'], store), '');
  t.regex(await ok(t, ['image', 'inspect', 'web:1'], store), /in 3 layers/);
});

test('checkout writes modes, symlinks and hardlinks, and reports them', async t => {
  const store = await withWeb(t);
  const dir = path.join(await tempDir(t), 'root');
  await ok(t, ['fs', 'web', 'write', '/home/secret', '--mode', '600'], store, 's\n');
  const r = JSON.parse(await ok(t, ['checkout', 'web', dir, '--json'], store)) as Record<string, unknown>;
  t.like(r, {files: 3, symlinks: 1, hardlinks: 1, skipped: []});
  t.deepEqual(readHostTree(dir), {
    bin: {kind: 'dir', mode: 0o755},
    'bin/busybox': {kind: 'file', mode: 0o755, content: 'BB\n', links: 2},
    'bin/sh': {kind: 'file', mode: 0o755, content: 'BB\n', links: 2},
    etc: {kind: 'dir', mode: 0o755},
    'etc/hostname': {kind: 'file', mode: 0o644, content: 'app\n', links: 1},
    'etc/issue': {kind: 'symlink', target: 'hostname'},
    home: {kind: 'dir', mode: 0o755},
    'home/secret': {kind: 'file', mode: 0o600, content: 's\n', links: 1},
  });
  // A non-empty directory is refused.
  const again = await strata(['checkout', 'web', dir], {store});
  t.is(again.code, 1);
  t.regex(again.stderr, /^strata: .*not empty.*\n$/);
});
