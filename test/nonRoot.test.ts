import * as fs from 'node:fs';
import * as path from 'node:path';
import {spawnSync} from 'node:child_process';
import test, {type ExecutionContext} from 'ava';
import {strata, tempDir} from './_cli.js';
import {writeTar} from './_fixtures.js';

/** nobody on Debian: no privilege, no groups. */
const NOBODY = 65534;

/**
 * A store that nobody owns, with root:1, an image whose every entry belongs to root
 * (0:0, as in any image pulled from a registry), imported by nobody.
 */
async function nobodyStore(t: ExecutionContext): Promise<{store: string; work: string}> {
  if (process.getuid?.() !== 0) throw new Error('the non-root test needs root to become nobody (CI runs as root)');
  const work = await tempDir(t, 'strata-nobody-');
  fs.chownSync(work, NOBODY, NOBODY);
  const tar = await writeTar(path.join(work, 'root.tar'), [
    {name: 'etc/', type: '5'}, {name: 'etc/hostname', content: 'root-owned\n'}, {name: 'etc/motd', content: 'motd\n'},
    {name: 'etc/ssl/', type: '5', mode: 0o700}, {name: 'etc/ssl/key', content: 'k\n', mode: 0o600}, {name: 'etc/ssl/link', type: '2', linkname: 'key'},
    {name: 'usr/', type: '5'}, {name: 'usr/bin/', type: '5'}, {name: 'usr/bin/su', content: 'su\n', mode: 0o4755},
  ]);
  const store = path.join(work, 'store');
  await as(t, ['init', '--store', store], store);
  await as(t, ['import', tar, '--tag', 'root:1'], store);
  return {store, work};
}

/** Runs strata as nobody; it must succeed. */
async function as(t: ExecutionContext, args: string[], store: string, input?: string): Promise<string> {
  const r = await strata(args, {store, user: NOBODY, ...(input !== undefined ? {input} : {})});
  t.is(r.code, 0, `strata ${args.join(' ')} as nobody: ${r.stderr}`);
  return r.stdout;
}

interface Stat { readonly uid: number; readonly gid: number; readonly mode: number; readonly kind: string }
const statOf = async (t: ExecutionContext, store: string, ...args: string[]): Promise<Stat> => JSON.parse(await as(t, [...args, '--json'], store)) as Stat;

test('a container over a root-owned image works without root: create, write, cp, mv, diff, commit, checkout, rm', async t => {
  const {store, work} = await nobodyStore(t);
  await as(t, ['create', 'root:1', '--name', 'web'], store);
  t.is(await as(t, ['diff', 'web'], store), '', 'an unchanged container diffs empty');

  // Copy-up of a root-owned file keeps the owner the view shows, without chown.
  await as(t, ['fs', 'web', 'write', '/etc/hostname'], store, 'changed\n');
  t.like(await statOf(t, store, 'fs', 'web', 'stat', '/etc/hostname'), {uid: 0, gid: 0, mode: 0o644});
  t.like(await statOf(t, store, 'fs', 'web', 'stat', '/etc'), {uid: 0, gid: 0, mode: 0o755});
  fs.writeFileSync(path.join(work, 'motd'), 'from the host\n');
  fs.chownSync(path.join(work, 'motd'), NOBODY, NOBODY);
  await as(t, ['cp', path.join(work, 'motd'), 'web:/etc/motd'], store);
  t.like(await statOf(t, store, 'fs', 'web', 'stat', '/etc/motd'), {uid: 0, gid: 0});
  // A setuid file keeps its bits through copy-up; a lower directory renamed keeps its owners.
  await as(t, ['fs', 'web', 'chmod', '4750', '/usr/bin/su'], store);
  t.like(await statOf(t, store, 'fs', 'web', 'stat', '/usr/bin/su'), {uid: 0, gid: 0, mode: 0o4750});
  await as(t, ['fs', 'web', 'mv', '/etc/ssl', '/etc/tls'], store);
  t.like(await statOf(t, store, 'fs', 'web', 'stat', '/etc/tls'), {uid: 0, gid: 0, mode: 0o700});
  t.like(await statOf(t, store, 'fs', 'web', 'stat', '/etc/tls/key'), {uid: 0, gid: 0, mode: 0o600});
  // A file nobody makes is nobody's, as on any filesystem.
  await as(t, ['fs', 'web', 'write', '/etc/new'], store, 'new\n');
  t.like(await statOf(t, store, 'fs', 'web', 'stat', '/etc/new'), {uid: NOBODY, gid: NOBODY});

  t.is(await as(t, ['diff', 'web'], store),
    'C /etc\nC /etc/hostname\nC /etc/motd\nA /etc/new\nD /etc/ssl\nA /etc/tls\nA /etc/tls/key\nA /etc/tls/link\nC /usr\nC /usr/bin\nC /usr/bin/su\n');

  // The committed layer has the owners the view showed, and so has a container of it.
  const commit = JSON.parse(await as(t, ['commit', 'web', '--tag', 'web:1', '--json'], store)) as {layer: string};
  t.regex(commit.layer, /^b3:/);
  await as(t, ['create', 'web:1', '--name', 'next'], store);
  t.is(await as(t, ['diff', 'next'], store), '');
  for (const p of ['/etc', '/etc/hostname', '/etc/motd', '/etc/tls', '/etc/tls/key', '/usr/bin/su'])
    t.like(await statOf(t, store, 'fs', 'next', 'stat', p), {uid: 0, gid: 0}, p);
  t.like(await statOf(t, store, 'fs', 'next', 'stat', '/usr/bin/su'), {mode: 0o4750});
  t.is(await as(t, ['diff', 'root:1', 'web:1'], store), await as(t, ['diff', 'web'], store));

  // Checkout as nobody: the content and modes (owners are the caller's without root).
  const out = path.join(work, 'out');
  await as(t, ['checkout', 'web:1', out], store);
  t.is(fs.readFileSync(path.join(out, 'etc/hostname'), 'utf8'), 'changed\n');
  t.is(fs.readFileSync(path.join(out, 'etc/motd'), 'utf8'), 'from the host\n');
  t.is(fs.statSync(path.join(out, 'etc/tls')).mode & 0o7777, 0o700);
  t.is(fs.statSync(path.join(out, 'usr/bin/su')).mode & 0o7777, 0o4750);
  t.is(fs.statSync(path.join(out, 'etc/hostname')).uid, NOBODY);
  const fromContainer = path.join(work, 'out-next');
  await as(t, ['checkout', 'next', fromContainer], store);
  await as(t, ['fs', 'next', 'write', '/etc/hostname'], store, 'again\n');
  const again = path.join(work, 'out-again');
  await as(t, ['checkout', 'next', again], store);
  t.is(spawnSync('getfattr', ['-d', '-m', '-', path.join(again, 'etc/hostname')], {encoding: 'utf8'}).stdout, '', 'the owner record is not checked out');

  await as(t, ['rm', 'web', 'next'], store);
  t.deepEqual(JSON.parse(await as(t, ['ps', '--json'], store)), []);
  // Root reads the same store and sees the same owners.
  const asRoot = JSON.parse((await strata(['ls', 'web:1', '/etc', '--json'], {store})).stdout) as {name: string; uid: number}[];
  t.deepEqual(asRoot.map(e => [e.name, e.uid]), [['hostname', 0], ['motd', 0], ['new', NOBODY], ['tls', 0]]);
});

test('cp -a without root keeps user xattrs and leaves out a capability nobody may set, as cp -a does; the copy is the caller\'s', async t => {
  const {store, work} = await nobodyStore(t);
  await as(t, ['create', 'root:1', '--name', 'web'], store);
  const file = path.join(work, 'tool');
  fs.writeFileSync(file, 'a tool\n');
  fs.chownSync(file, 1234, 1234);
  for (const [cmd, ...args] of [['setfattr', '-n', 'user.note', '-v', 'kept', file], ['setcap', 'cap_net_raw+ep', file]] as const) {
    const r = spawnSync(cmd, args, {encoding: 'utf8'});
    if (r.error || r.status !== 0) t.fail(`${cmd} failed (Debian attr and libcap2-bin install it): ${r.error?.message ?? r.stderr}`);
  }
  await as(t, ['cp', file, 'web:/usr/bin/tool'], store);
  t.like(await statOf(t, store, 'fs', 'web', 'stat', '/usr/bin/tool'), {uid: NOBODY, gid: NOBODY});
  await as(t, ['commit', 'web', '--tag', 'web:1'], store);
  const out = path.join(await tempDir(t), 'out');
  t.is((await strata(['checkout', 'web:1', out], {store})).code, 0); // as root: the xattrs the layer has
  const dump = spawnSync('getfattr', ['-d', '-m', '-', path.join(out, 'usr/bin/tool')], {encoding: 'utf8'}).stdout;
  t.regex(dump, /user\.note="kept"/);
  t.notRegex(dump, /security\.capability/);
});
