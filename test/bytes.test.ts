import {execFileSync, spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {strata, tempDir, tempStore} from './_cli.js';
import {peer} from './_peers.js';

// Names and xattr values are bytes: names that are not UTF-8 (made with Buffer paths),
// binary xattrs (setfattr) and file capabilities (setcap) go through GNU tar, directory
// import, checkout, commit and export unchanged; getfattr, getcap, GNU tar and umoci judge.

const B = (...parts: (string | number[])[]) => Buffer.concat(parts.map(p => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
const join = (dir: string, ...names: Buffer[]) => Buffer.concat([Buffer.from(dir), ...names.flatMap(n => [Buffer.from('/'), n])]);
const F_FF = B('f', [0xff]), F_FE = B('f', [0xfe]), D_80 = B('d', [0x80]);
/** A binary xattr value: NUL and bytes that are not UTF-8. */
const BLOB = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x01, 0x41]);

/** getfattr's dump of a path (hex values), without following a symlink. */
function xattrs(t: ExecutionContext, p: Buffer | string): Record<string, string> {
  // argv is text: the path's bytes go through printf in sh.
  const out = spawnSync('sh', ['-c', 'p="$(printf "%bx" "$1")"; exec getfattr -h --absolute-names -d -m - -e hex -- "${p%x}"', 'sh', octal(Buffer.from(p))], {encoding: 'latin1'});
  if (out.error) t.fail(`getfattr is not installed (Debian attr): ${out.error.message}`);
  const got: Record<string, string> = {};
  for (const line of out.stdout.split('\n')) {
    const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line);
    if (m && m[1] !== 'security.selinux') got[m[1]!] = m[2]!;
  }
  return got;
}

/** setfattr on a path given by its bytes (argv is text: printf in sh makes them). */
function setfattrBytes(t: ExecutionContext, p: Buffer, name: string, value: Buffer): void {
  const r = spawnSync('sh', ['-c', 'p="$(printf "%bx" "$1")"; exec setfattr -h -n "$2" -v "$3" -- "${p%x}"', 'sh', octal(p), name, `0x${value.toString('hex')}`], {encoding: 'utf8'});
  if (r.error || r.status !== 0) t.fail(`setfattr failed (Debian attr): ${r.error?.message ?? r.stderr}`);
}
const octal = (p: Buffer) => [...p].map(b => `\\0${b.toString(8).padStart(3, '0')}`).join('');

/** A tree with two names that differ only in a byte that is not UTF-8, one inside a directory so named, a binary xattr and a capability. */
async function sourceTree(t: ExecutionContext): Promise<string> {
  const root = path.join(await tempDir(t), 'src');
  fs.mkdirSync(root);
  fs.writeFileSync(join(root, F_FF), 'ff\n');
  fs.writeFileSync(join(root, F_FE), 'fe\n');
  fs.mkdirSync(join(root, D_80));
  fs.writeFileSync(join(root, D_80, F_FF), 'inner\n');
  fs.symlinkSync(F_FF, join(root, B('l', [0xfd])));
  fs.writeFileSync(path.join(root, 'ping'), 'a binary\n');
  fs.chmodSync(path.join(root, 'ping'), 0o755);
  peer(t, 'setfattr', ['-n', 'user.blob', '-v', `0x${BLOB.toString('hex')}`, path.join(root, 'ping')]);
  peer(t, 'setcap', ['cap_net_raw+ep', path.join(root, 'ping')]);
  return root;
}

test('a GNU tar of names that are not UTF-8 keeps each name; the export and GNU tar agree on them', async t => {
  const store = await tempStore(t);
  const root = await sourceTree(t);
  for (const format of ['gnu', 'posix']) {
    const tarFile = path.join(path.dirname(root), `src-${format}.tar`);
    execFileSync('tar', ['-C', root, `--format=${format}`, '--xattrs', '--xattrs-include=*', '-cf', tarFile, '.']);
    const r = await strata(['import', tarFile, '--tag', `src:${format}`, '--json'], {store});
    t.is(r.code, 0, r.stderr);
    const names = JSON.parse((await strata(['ls', `src:${format}`, '/', '--json'], {store})).stdout).map((e: {name: string}) => e.name);
    t.deepEqual(names, ['d\udc80', 'f\udcfe', 'f\udcff', 'l\udcfd', 'ping'], format);
    t.is((await strata(['ls', `src:${format}`, '/'], {store})).stdout.length > 0, true);
    const layer = JSON.parse(r.stdout).layer as string;
    const out = path.join(path.dirname(root), `out-${format}.tar`);
    t.is((await strata(['layer', 'export', layer, out, '--compress', 'none'], {store})).code, 0);
    const x = path.join(path.dirname(root), `x-${format}`);
    fs.mkdirSync(x);
    execFileSync('tar', ['-C', x, '--xattrs', '--xattrs-include=*', '-xf', out], {stdio: 'pipe'}); // GNU tar 1.34 warns that it does not know hdrcharset
    t.is(fs.readFileSync(join(x, F_FF), 'utf8'), 'ff\n');
    t.is(fs.readFileSync(join(x, F_FE), 'utf8'), 'fe\n');
    t.is(fs.readFileSync(join(x, D_80, F_FF), 'utf8'), 'inner\n');
    t.true(fs.readlinkSync(join(x, B('l', [0xfd])), {encoding: 'buffer'}).equals(F_FF));
    t.deepEqual(xattrs(t, path.join(x, 'ping')), xattrs(t, path.join(root, 'ping')), `${format}: xattrs byte for byte`);
    // And the export imports as the same layer.
    t.is(JSON.parse((await strata(['import', out, '--json'], {store})).stdout).layer, layer);
  }
});

test('directory import, checkout and commit keep names that are not UTF-8, binary xattrs and capabilities', async t => {
  const store = await tempStore(t);
  const root = await sourceTree(t);
  // xattrs on a name that is not UTF-8, and on a plain name inside a directory that is not.
  fs.writeFileSync(join(root, D_80, B('plain')), 'plain\n');
  setfattrBytes(t, join(root, D_80, F_FF), 'user.inner', BLOB);
  setfattrBytes(t, join(root, D_80, B('plain')), 'user.plain', BLOB);
  const r = await strata(['import', root, '--tag', 'dir:1', '--json'], {store});
  t.is(r.code, 0, r.stderr);
  t.deepEqual(JSON.parse((await strata(['ls', 'dir:1', '/', '--json'], {store})).stdout).map((e: {name: string}) => e.name), ['d\udc80', 'f\udcfe', 'f\udcff', 'l\udcfd', 'ping']);
  // The same tree as a GNU tar gives the same layer.
  execFileSync('tar', ['-C', root, '--xattrs', '--xattrs-include=*', '-cf', path.join(path.dirname(root), 'same.tar'), '.']);
  t.is(JSON.parse((await strata(['import', path.join(path.dirname(root), 'same.tar'), '--json'], {store})).stdout).layer, JSON.parse(r.stdout).layer);

  const out = path.join(path.dirname(root), 'out');
  t.is((await strata(['checkout', 'dir:1', out], {store})).code, 0);
  t.is(fs.readFileSync(join(out, F_FF), 'utf8'), 'ff\n');
  t.is(fs.readFileSync(join(out, F_FE), 'utf8'), 'fe\n');
  t.deepEqual(xattrs(t, path.join(out, 'ping')), xattrs(t, path.join(root, 'ping')));
  t.deepEqual(xattrs(t, join(out, D_80, F_FF)), {'user.inner': BLOB.toString('hex')});
  t.deepEqual(xattrs(t, join(out, D_80, B('plain'))), {'user.plain': BLOB.toString('hex')});
  t.regex(peer(t, 'getcap', [path.join(out, 'ping')]), /cap_net_raw[=+]ep/);

  // A container copies ping up (chmod) and commits: the new layer keeps its capability.
  t.is((await strata(['create', 'dir:1', '--name', 'c'], {store})).code, 0);
  t.is((await strata(['fs', 'c', 'chmod', '0750', '/ping'], {store})).code, 0);
  t.is((await strata(['commit', 'c', '--tag', 'c:1'], {store})).code, 0);
  const out2 = path.join(path.dirname(root), 'out2');
  t.is((await strata(['checkout', 'c:1', out2], {store})).code, 0);
  t.is(fs.statSync(path.join(out2, 'ping')).mode & 0o7777, 0o750);
  t.deepEqual(xattrs(t, path.join(out2, 'ping')), xattrs(t, path.join(root, 'ping')));
});

test('device nodes and fifos in a directory import as entries, as from a tar', async t => {
  const store = await tempStore(t);
  const root = path.join(await tempDir(t), 'dev');
  fs.mkdirSync(root);
  peer(t, 'mknod', [path.join(root, 'null'), 'c', '1', '3']);
  peer(t, 'mknod', [path.join(root, 'sda'), 'b', '8', '0']);
  peer(t, 'mkfifo', [path.join(root, 'fifo')]);
  const r = await strata(['import', root, '--tag', 'dev:1'], {store});
  t.is(r.code, 0, r.stderr);
  const ls = JSON.parse((await strata(['ls', 'dev:1', '/', '--json'], {store})).stdout) as {name: string; kind: string}[];
  t.deepEqual(ls.map(e => [e.name, e.kind]), [['fifo', 'fifo'], ['null', 'char'], ['sda', 'block']]);
  const out = path.join(path.dirname(root), 'out');
  t.is((await strata(['checkout', 'dev:1', out], {store})).code, 0);
  t.is(fs.statSync(path.join(out, 'null')).rdev, fs.statSync(path.join(root, 'null')).rdev);
  t.is(fs.statSync(path.join(out, 'sda')).rdev, fs.statSync(path.join(root, 'sda')).rdev);
});

test('umoci unpacks an exported image with the names, xattrs and modes the source had', async t => {
  const store = await tempStore(t);
  const root = await sourceTree(t);
  t.is((await strata(['import', root, '--tag', 'u:1'], {store})).code, 0);
  const dir = path.dirname(root);
  t.is((await strata(['image', 'export', 'u:1', path.join(dir, 'oci')], {store})).code, 0);
  peer(t, 'umoci', ['unpack', '--image', `${path.join(dir, 'oci')}:u:1`, path.join(dir, 'bundle')]);
  const rootfs = path.join(dir, 'bundle', 'rootfs');
  t.is(fs.readFileSync(join(rootfs, F_FF), 'utf8'), 'ff\n');
  t.is(fs.readFileSync(join(rootfs, F_FE), 'utf8'), 'fe\n');
  t.is(fs.readFileSync(join(rootfs, D_80, F_FF), 'utf8'), 'inner\n');
  t.is(fs.statSync(path.join(rootfs, 'ping')).mode & 0o7777, 0o755);
  t.deepEqual(xattrs(t, path.join(rootfs, 'ping')), xattrs(t, path.join(root, 'ping')));
});

test('an xattr changed, added or removed by a process is a change: diff lists it, commit and checkout keep it', async t => {
  const store = await tempStore(t);
  const root = path.join(await tempDir(t), 'src');
  fs.mkdirSync(root);
  for (const name of ['changed', 'added', 'removed', 'same']) fs.writeFileSync(path.join(root, name), `${name}\n`);
  for (const name of ['changed', 'removed', 'same']) peer(t, 'setfattr', ['-n', 'user.k', '-v', 'v1', path.join(root, name)]);
  t.is((await strata(['import', root, '--tag', 'x:1'], {store})).code, 0);
  t.is((await strata(['create', 'x:1', '--name', 'c'], {store})).code, 0);
  t.teardown(() => strata(['umount', 'c'], {store}));
  const mounted = await strata(['mount', 'c'], {store});
  t.is(mounted.code, 0, mounted.stderr);
  const at = mounted.stdout.trim();
  // What a process does through the kernel mount: only xattrs, so mode, owner, mtime and bytes stay.
  peer(t, 'setfattr', ['-n', 'user.k', '-v', 'v2', path.join(at, 'changed')]);
  setfattrBytes(t, Buffer.from(path.join(at, 'added')), 'user.new', BLOB);
  peer(t, 'setfattr', ['-x', 'user.k', path.join(at, 'removed')]);
  peer(t, 'setfattr', ['-n', 'user.k', '-v', 'v1', path.join(at, 'same')]); // the value it had: a copy-up, no change
  t.is((await strata(['umount', 'c'], {store})).code, 0);

  const changes = 'C /added\nC /changed\nC /removed\n';
  t.is((await strata(['diff', 'c'], {store})).stdout, changes);
  t.is((await strata(['commit', 'c', '--tag', 'x:2'], {store})).code, 0);
  t.is((await strata(['diff', 'x:1', 'x:2'], {store})).stdout, changes);
  t.is((await strata(['diff', 'x:2', 'x:1'], {store})).stdout, changes);
  const out = path.join(path.dirname(root), 'out');
  t.is((await strata(['checkout', 'x:2', out], {store})).code, 0);
  t.deepEqual(xattrs(t, path.join(out, 'changed')), {'user.k': Buffer.from('v2').toString('hex')});
  t.deepEqual(xattrs(t, path.join(out, 'added')), {'user.new': BLOB.toString('hex')});
  t.deepEqual(xattrs(t, path.join(out, 'removed')), {});
  t.deepEqual(xattrs(t, path.join(out, 'same')), {'user.k': Buffer.from('v1').toString('hex')});
});

test('cp keeps names that are not UTF-8, into a container and out of it', async t => {
  const store = await tempStore(t);
  const base = path.join(await tempDir(t), 'base');
  fs.mkdirSync(base);
  fs.writeFileSync(path.join(base, 'keep'), 'keep\n');
  t.is((await strata(['import', base, '--tag', 'b:1'], {store})).code, 0);
  t.is((await strata(['create', 'b:1', '--name', 'c'], {store})).code, 0);
  const src = path.join(path.dirname(base), 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(join(src, F_FF), 'ff\n');
  fs.writeFileSync(join(src, F_FE), 'fe\n');
  fs.mkdirSync(join(src, D_80));
  fs.writeFileSync(join(src, D_80, F_FF), 'inner\n');
  fs.symlinkSync(F_FF, join(src, B('l', [0xfd])));
  const into = await strata(['cp', src, 'c:/'], {store});
  t.is(into.code, 0, into.stderr);
  t.deepEqual(JSON.parse((await strata(['ls', 'c', '/src', '--json'], {store})).stdout).map((e: {name: string}) => e.name), ['d\udc80', 'f\udcfe', 'f\udcff', 'l\udcfd']);

  const out = path.join(path.dirname(base), 'out');
  const tree = await strata(['cp', 'c:/src', out], {store});
  t.is(tree.code, 0, tree.stderr);
  t.deepEqual(fs.readdirSync(Buffer.from(out), {encoding: 'buffer'}).map(n => n.toString('hex')).sort(), [D_80, F_FE, F_FF, B('l', [0xfd])].map(n => n.toString('hex')).sort());
  t.is(fs.readFileSync(join(out, D_80, F_FF), 'utf8'), 'inner\n');
  t.deepEqual(fs.readlinkSync(join(out, B('l', [0xfd])), {encoding: 'buffer'}), F_FF);
});

for (const mounted of [false, true]) {
  test(`cp -a in keeps owners, setuid, binary xattrs and capabilities ${mounted ? 'through a mount' : 'in the writable layer'}; commit and cp out give them back`, async t => {
    const store = await tempStore(t);
    const base = path.join(await tempDir(t), 'base');
    fs.mkdirSync(base);
    t.is((await strata(['import', base, '--tag', 'b:1'], {store})).code, 0);
    t.is((await strata(['create', 'b:1', '--name', 'c'], {store})).code, 0);
    if (mounted) {
      t.teardown(() => strata(['umount', 'c'], {store}));
      const m = await strata(['mount', 'c'], {store});
      t.is(m.code, 0, m.stderr);
    }
    const src = path.join(path.dirname(base), 'src');
    fs.mkdirSync(path.join(src, 'd'), {recursive: true});
    fs.writeFileSync(path.join(src, 'd', 'ping'), 'a binary\n');
    fs.chownSync(path.join(src, 'd', 'ping'), 1234, 5678);
    fs.chmodSync(path.join(src, 'd', 'ping'), 0o4755); // after the chown: it clears setuid
    peer(t, 'setfattr', ['-n', 'user.blob', '-v', `0x${BLOB.toString('hex')}`, path.join(src, 'd', 'ping')]);
    peer(t, 'setcap', ['cap_net_raw+ep', path.join(src, 'd', 'ping')]);
    peer(t, 'setfattr', ['-n', 'user.dir', '-v', 'kept', path.join(src, 'd')]);
    fs.chownSync(path.join(src, 'd'), 42, 43);
    fs.symlinkSync('ping', path.join(src, 'd', 'link'));
    fs.lchownSync(path.join(src, 'd', 'link'), 7, 8);
    const into = await strata(['cp', src, 'c:/'], {store});
    t.is(into.code, 0, into.stderr);

    type Listed = {name: string; mode: number; uid: number; gid: number};
    const listed = async (p: string) => JSON.parse((await strata(['ls', 'c', p, '--json'], {store})).stdout) as Listed[];
    const byName = Object.fromEntries((await listed('/src/d')).map(e => [e.name, e]));
    t.like(byName['ping'], {uid: 1234, gid: 5678, mode: 0o4755});
    t.like(byName['link'], {uid: 7, gid: 8});
    t.like((await listed('/src')).find(e => e.name === 'd'), {uid: 42, gid: 43});

    if (mounted) t.is((await strata(['umount', 'c'], {store})).code, 0);
    t.is((await strata(['commit', 'c', '--tag', 'b:2'], {store})).code, 0);
    const out = path.join(path.dirname(base), 'out');
    t.is((await strata(['checkout', 'b:2', out], {store})).code, 0);
    const ping = path.join(out, 'src', 'd', 'ping');
    t.like(fs.statSync(ping), {uid: 1234, gid: 5678, mode: 0o104755});
    t.deepEqual(xattrs(t, ping), xattrs(t, path.join(src, 'd', 'ping')));
    t.deepEqual(xattrs(t, path.join(out, 'src', 'd')), {'user.dir': Buffer.from('kept').toString('hex')});
    t.like(fs.lstatSync(path.join(out, 'src', 'd', 'link')), {uid: 7, gid: 8});
  });
}

test('a security.selinux label is content on a host without SELinux: import keeps it, and a copy-up then commit keeps it (on a SELinux host it is the host\'s label and dropped)', async t => {
  const store = await tempStore(t);
  const src = path.join(await tempDir(t), 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'labelled'), 'x\n');
  peer(t, 'setfattr', ['-n', 'security.selinux', '-v', 'system_u:object_r:bin_t:s0', path.join(src, 'labelled')]);
  t.is((await strata(['import', src, '--tag', 'l:1'], {store})).code, 0);
  t.is((await strata(['create', 'l:1', '--name', 'c'], {store})).code, 0);
  t.is((await strata(['fs', 'chmod', 'c', '600', '/labelled'], {store})).code, 0); // a copy-up
  t.is((await strata(['diff', 'c'], {store})).stdout, 'C /labelled\n');
  t.is((await strata(['commit', 'c', '--tag', 'l:2'], {store})).code, 0);
  const out = path.join(path.dirname(src), 'out');
  t.is((await strata(['checkout', 'l:2', out], {store})).code, 0);
  const label = spawnSync('getfattr', ['-n', 'security.selinux', '--only-values', path.join(out, 'labelled')], {encoding: 'utf8'});
  if (fs.existsSync('/sys/fs/selinux/enforce')) t.not(label.stdout, 'system_u:object_r:bin_t:s0');
  else t.is(label.stdout, 'system_u:object_r:bin_t:s0', label.stderr);
  t.is(fs.statSync(path.join(out, 'labelled')).mode & 0o777, 0o600);
});
