import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import {ErofsTree, type ErofsMeta, erofsToBuffer, writeErofsFile} from '../src/index.js';
import {type Seen, fsck, hex, mountErofs, mountOverlay, tempDir, walk} from './_mount.js';

const T = 1_700_000_000;
const meta = (mode: number, extra: Partial<ErofsMeta> = {}): ErofsMeta => ({mode, uid: 0, gid: 0, mtime: T, ...extra});

/** Writes the image to a temporary file, checks it with fsck.erofs, and mounts it. */
function imageOf(t: Parameters<typeof tempDir>[0], tree: ErofsTree): {dir: string; image: string; mnt: string} {
  const dir = tempDir(t);
  const image = path.join(dir, 'image.erofs');
  writeErofsFile(tree, image, {uuid: Buffer.alloc(16, 7)});
  fsck(image);
  return {dir, image, mnt: mountErofs(t, image, path.join(dir, 'mnt'))};
}

/** A tree with every kind of inode, xattrs of every prefix, a hardlink, odd modes and times. */
function everyKind(): ErofsTree {
  const tree = new ErofsTree(meta(0o755, {xattrs: {'user.root': Buffer.from('top')}}));
  const etc = tree.mkdir(tree.root, 'etc', meta(0o750, {uid: 1000, gid: 2000, mtime: T - 5}));
  const passwd = tree.addFile(etc, 'passwd', meta(0o644, {mtime: -1}), {data: Buffer.from('root:x:0:0::/root:/bin/sh\n')});
  tree.link(tree.root, 'passwd-again', passwd);
  tree.addFile(tree.root, 'setuid', meta(0o4755, {uid: 70000, gid: 80000}), {data: Buffer.from('#!/bin/sh\n')});
  tree.addFile(tree.root, 'caps', meta(0o755, {xattrs: {
    'security.capability': Buffer.from('0100000200200000000000000000000000000000', 'hex'),
    'trusted.overlay.opaque': Buffer.from('y'),
    'user.bin': Buffer.from([0, 255, 1]),
    'system.posix_acl_access': Buffer.from('0200000001000600ffffffff04000400ffffffff20000400ffffffff', 'hex'),
  }}), {data: Buffer.alloc(0)});
  tree.addSymlink(tree.root, 'link', meta(0o777, {uid: 33, gid: 44}), 'etc/passwd');
  tree.addSymlink(tree.root, 'abs', meta(0o777), '/nowhere/at/all');
  tree.addDevice(tree.root, 'null', 'char', meta(0o666), 1, 3);
  tree.addDevice(tree.root, 'sda9', 'block', meta(0o660, {gid: 6}), 8, 9);
  tree.addDevice(tree.root, 'bigdev', 'char', meta(0o600), 4095, 1048575);
  tree.addFifo(tree.root, 'pipe', meta(0o600, {uid: 7, gid: 8}));
  tree.mkdir(tree.root, 'empty-dir', meta(0o1777, {mtime: 0}));
  tree.addFile(tree.root, 'meta-copy', meta(0o755), {size: 123_456, redirect: '/b3/ab/cd'});
  return tree;
}

test('an image with every kind of inode passes fsck.erofs and mounts showing exactly what was written', t => {
  const {mnt} = imageOf(t, everyKind());
  const {entries, ino} = walk(mnt);
  const x = (o: Record<string, string | Buffer>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, hex(v)]));
  const want: Record<string, Seen> = {
    '': {kind: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: T, xattrs: x({'user.root': 'top'})},
    '/abs': {kind: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: T, target: '/nowhere/at/all'},
    '/bigdev': {kind: 'char', mode: 0o600, uid: 0, gid: 0, mtime: T, dev: [4095, 1048575]},
    '/caps': {kind: 'file', mode: 0o755, uid: 0, gid: 0, mtime: T, size: 0, nlink: 1, xattrs: x({
      'security.capability': Buffer.from('0100000200200000000000000000000000000000', 'hex'),
      'system.posix_acl_access': Buffer.from('0200000001000600ffffffff04000400ffffffff20000400ffffffff', 'hex'),
      // the image is an overlay lower: the content's own overlay xattrs are escaped
      'trusted.overlay.overlay.opaque': 'y',
      'user.bin': Buffer.from([0, 255, 1]),
    })},
    '/empty-dir': {kind: 'dir', mode: 0o1777, uid: 0, gid: 0, mtime: 0},
    '/etc': {kind: 'dir', mode: 0o750, uid: 1000, gid: 2000, mtime: T - 5},
    '/etc/passwd': {kind: 'file', mode: 0o644, uid: 0, gid: 0, mtime: -1, size: 26, nlink: 2},
    '/link': {kind: 'symlink', mode: 0o777, uid: 33, gid: 44, mtime: T, target: 'etc/passwd'},
    '/meta-copy': {kind: 'file', mode: 0o755, uid: 0, gid: 0, mtime: T, size: 123_456, nlink: 1, xattrs: x({'trusted.overlay.metacopy': '', 'trusted.overlay.redirect': '/b3/ab/cd'})},
    '/null': {kind: 'char', mode: 0o666, uid: 0, gid: 0, mtime: T, dev: [1, 3]},
    '/passwd-again': {kind: 'file', mode: 0o644, uid: 0, gid: 0, mtime: -1, size: 26, nlink: 2},
    '/pipe': {kind: 'fifo', mode: 0o600, uid: 7, gid: 8, mtime: T},
    '/sda9': {kind: 'block', mode: 0o660, uid: 0, gid: 6, mtime: T, dev: [8, 9]},
    '/setuid': {kind: 'file', mode: 0o4755, uid: 70000, gid: 80000, mtime: T, size: 10, nlink: 1},
  };
  t.deepEqual(entries, want);
  t.is(ino['/passwd-again'], ino['/etc/passwd'], 'a hardlink is the same inode');
  t.is(fs.readFileSync(path.join(mnt, 'passwd-again'), 'utf8'), 'root:x:0:0::/root:/bin/sh\n');
  t.is(fs.statSync(path.join(mnt, 'etc')).nlink, 2);
  t.is(fs.statSync(mnt).nlink, 4, 'the root has . , .. and two subdirectories');
});

test('the same tree gives the same bytes, whatever the order entries were added in', t => {
  const build = (reverse: boolean) => {
    const tree = new ErofsTree(meta(0o755));
    const names = Array.from({length: 500}, (_, i) => `n${i}`);
    for (const n of reverse ? names.reverse() : names) tree.addFile(tree.root, n, meta(0o644, {xattrs: {'user.k': Buffer.from(n.slice(0, 2))}}), {data: Buffer.from(n)});
    return erofsToBuffer(tree, {uuid: Buffer.alloc(16, 1)});
  };
  const a = build(false);
  t.true(a.equals(build(false)));
  t.true(a.equals(build(true)));
  t.true(erofsToBuffer(everyKind()).equals(erofsToBuffer(everyKind())));
});

test('long names, byte names, thousands of entries in one directory and deep nesting mount as written', t => {
  const tree = new ErofsTree(meta(0o755));
  const wide = tree.mkdir(tree.root, 'wide', meta(0o755));
  const names: Buffer[] = [];
  for (let i = 0; i < 5000; i++) names.push(Buffer.from(`entry-${i}-${'x'.repeat(i % 97)}`));
  names.push(Buffer.alloc(255, 0x6c), Buffer.from([0x66, 0xff]), Buffer.from([0x66, 0xfe]), Buffer.from('-before-dot'), Buffer.from('é'));
  for (const n of names) tree.addFile(wide, n, meta(0o644), {data: n});
  let d = tree.root;
  for (let i = 0; i < 200; i++) d = tree.mkdir(d, `d${i % 10}`, meta(0o700));
  tree.addFile(d, 'bottom', meta(0o600), {data: Buffer.from('deep')});
  const {mnt} = imageOf(t, tree);

  const listed = fs.readdirSync(path.join(mnt, 'wide'), {encoding: 'buffer'});
  t.deepEqual(listed.map(b => b.toString('latin1')).sort(), names.map(b => b.toString('latin1')).sort());
  t.true(fs.statSync(path.join(mnt, 'wide')).size > 4096 * 30, 'the directory spans many blocks');
  // Lookups go by binary search over the blocks: every name must be found, not only listed.
  for (const n of names) t.true(fs.readFileSync(Buffer.concat([Buffer.from(`${mnt}/wide/`), n])).equals(n));
  const deep = Array.from({length: 200}, (_, i) => `d${i % 10}`).join('/');
  t.is(fs.readFileSync(path.join(mnt, deep, 'bottom'), 'utf8'), 'deep');
});

test('files of every size class read back byte for byte', t => {
  const sizes = [0, 1, 63, 64, 65, 2047, 2048, 2049, 4031, 4032, 4095, 4096, 4097, 6000, 8191, 8192, 8193, 16384, 65537, 1 << 20, (1 << 20) + 3];
  const tree = new ErofsTree(meta(0o755));
  const data = sizes.map((n, k) => Buffer.from(Array.from({length: n}, (_, i) => (i * 31 + k) & 0xff)));
  // A big xattr leaves little room beside the inode, so tails must move to their own blocks.
  sizes.forEach((n, k) => tree.addFile(tree.root, `s${n}`, meta(0o644, k % 2 ? {xattrs: {'user.pad': Buffer.alloc(3000, 1)}} : {}), {data: data[k]!}));
  const {mnt} = imageOf(t, tree);
  sizes.forEach((n, k) => t.true(fs.readFileSync(path.join(mnt, `s${n}`)).equals(data[k]!), `size ${n}`));
});

test('symlink targets of every length and many or large xattrs read back', t => {
  const tree = new ErofsTree(meta(0o755));
  const targets = [1, 100, 2000, 4000, 4095].map(n => 'a/'.repeat(n).slice(0, n));
  targets.forEach(target => tree.addSymlink(tree.root, `l${target.length}`, meta(0o777, {xattrs: {'user.x': Buffer.alloc(200, 2)}}), target));
  const many: Record<string, Buffer> = {};
  for (let i = 0; i < 100; i++) many[`user.attr${i}`] = Buffer.from(`value ${i}`);
  tree.addFile(tree.root, 'many-xattrs', meta(0o644, {xattrs: many}), {data: Buffer.from('m')});
  tree.addFile(tree.root, 'huge-xattr', meta(0o644, {xattrs: {'user.huge': Buffer.alloc(65535, 3)}}), {size: 10, redirect: '/x'});
  const {mnt} = imageOf(t, tree);
  for (const target of targets) t.is(fs.readlinkSync(path.join(mnt, `l${target.length}`)), target);
  const {entries} = walk(mnt);
  t.is(Object.keys(entries['/many-xattrs']!.xattrs!).length, 100);
  t.is(entries['/many-xattrs']!.xattrs!['user.attr42'], hex('value 42'));
  t.is(entries['/huge-xattr']!.xattrs!['user.huge'], Buffer.alloc(65535, 3).toString('hex'));
  t.is(entries['/huge-xattr']!.xattrs!['trusted.overlay.redirect'], hex('/x'));
});

test('xattrs many inodes share are stored once', t => {
  const tree = new ErofsTree(meta(0o755));
  for (let i = 0; i < 1000; i++) tree.addFile(tree.root, `f${i}`, meta(0o644, {xattrs: {'security.selinux': Buffer.from('system_u:object_r:usr_t:s0'), 'user.own': Buffer.from(`v${i}`)}}), {size: 100, redirect: `/b3/00/${i}`});
  const dir = tempDir(t);
  const image = path.join(dir, 'image.erofs');
  const stats = writeErofsFile(tree, image);
  t.is(stats.sharedXattrs, 2, 'selinux label and the empty metacopy');
  fsck(image);
  const {entries} = walk(mountErofs(t, image, path.join(dir, 'mnt')));
  t.deepEqual(entries['/f999']!.xattrs, {'security.selinux': hex('system_u:object_r:usr_t:s0'), 'trusted.overlay.metacopy': '', 'trusted.overlay.redirect': hex('/b3/00/999'), 'user.own': hex('v999')});
});

test('through overlayfs with a data-only lower, a metacopy file reads its object and escaped xattrs show as the content had them', t => {
  const tree = new ErofsTree(meta(0o755));
  const bin = tree.mkdir(tree.root, 'bin', meta(0o755));
  const objects = tempDir(t, 'strata-objects-');
  const body = Buffer.from(Array.from({length: 300_000}, (_, i) => (i * 7) & 0xff));
  fs.mkdirSync(path.join(objects, 'b3', 'ab'), {recursive: true});
  fs.writeFileSync(path.join(objects, 'b3', 'ab', 'cdef'), body, {mode: 0o444});
  const tool = tree.addFile(bin, 'tool', meta(0o4755, {uid: 1000, gid: 1000, xattrs: {'trusted.overlay.opaque': Buffer.from('y'), 'user.k': Buffer.from('v')}}), {size: body.length, redirect: '/b3/ab/cdef'});
  tree.link(tree.root, 'tool-link', tool);
  tree.addFile(tree.root, 'inline', meta(0o640), {data: Buffer.from('kept in the image')});
  const {dir, mnt} = imageOf(t, tree);
  const merged = mountOverlay(t, mnt, objects, path.join(dir, 'merged'));

  t.true(fs.readFileSync(path.join(merged, 'bin', 'tool')).equals(body));
  t.true(fs.readFileSync(path.join(merged, 'tool-link')).equals(body));
  t.is(fs.readFileSync(path.join(merged, 'inline'), 'utf8'), 'kept in the image');
  const {entries} = walk(merged);
  t.deepEqual(entries['/bin/tool'], {kind: 'file', mode: 0o4755, uid: 1000, gid: 1000, mtime: T, size: body.length, nlink: 2, xattrs: {'trusted.overlay.opaque': hex('y'), 'user.k': hex('v')}});
  t.false(Object.keys(entries).some(p => p.startsWith('/b3')), 'the data-only layer shows no names of its own');
});

test('bad input is refused with a code', t => {
  const tree = new ErofsTree(meta(0o755));
  for (const name of ['', '.', '..', 'a/b', 'nul\0', 'x'.repeat(256)]) t.throws(() => tree.addFile(tree.root, name, meta(0o644), {data: Buffer.alloc(0)}), {code: 'EROFS_BAD_NAME'});
  t.throws(() => tree.addFile(tree.root, 'm', meta(0o10644), {data: Buffer.alloc(0)}), {code: 'EROFS_BAD_ENTRY'});
  t.throws(() => tree.addFile(tree.root, 'u', meta(0o644, {uid: -1}), {data: Buffer.alloc(0)}), {code: 'EROFS_BAD_ENTRY'});
  t.throws(() => tree.addDevice(tree.root, 'd', 'char', meta(0o644), 4096, 0), {code: 'EROFS_BAD_ENTRY'});
  t.throws(() => tree.addSymlink(tree.root, 's', meta(0o777), ''), {code: 'EROFS_BAD_ENTRY'});
  t.throws(() => tree.addFile(tree.root, 'r', meta(0o644), {size: 1, redirect: 'relative'}), {code: 'EROFS_BAD_ENTRY'});
  t.throws(() => tree.link(tree.root, 'dirlink', tree.mkdir(tree.root, 'sub', meta(0o755))), {code: 'EROFS_BAD_ENTRY'});

  const dup = new ErofsTree(meta(0o755));
  dup.addFifo(dup.root, 'same', meta(0o600));
  dup.addFifo(dup.root, 'same', meta(0o600));
  t.throws(() => erofsToBuffer(dup), {code: 'EROFS_DUPLICATE_NAME'});
  const badX = new ErofsTree(meta(0o755, {xattrs: {'system.other': Buffer.from('x')}}));
  t.throws(() => erofsToBuffer(badX), {code: 'EROFS_BAD_XATTR'});
  const big = new ErofsTree(meta(0o755, {xattrs: {'user.big': Buffer.alloc(65536)}}));
  t.throws(() => erofsToBuffer(big), {code: 'EROFS_BAD_XATTR'});
});

test('writeErofsFile leaves no file behind when the tree is refused', t => {
  const dir = tempDir(t);
  const dup = new ErofsTree(meta(0o755));
  dup.addFifo(dup.root, 'same', meta(0o600));
  dup.addFifo(dup.root, 'same', meta(0o600));
  t.throws(() => writeErofsFile(dup, path.join(dir, 'x.erofs')), {code: 'EROFS_DUPLICATE_NAME'});
  t.deepEqual(fs.readdirSync(dir), []);
});

test('files whose bytes are read as they are written (dataRef) give the same image as files given their bytes, and a short read is refused', t => {
  const sizes = [1, 2048, 2049, 4095, 4096, 4097, 6000, 8193, 16384, 65537];
  const data = sizes.map((n, k) => Buffer.from(Array.from({length: n}, (_, i) => (i * 17 + k) & 0xff)));
  const build = (lazy: boolean) => {
    const tree = new ErofsTree(meta(0o755));
    sizes.forEach((n, k) => tree.addFile(tree.root, `s${n}`, meta(0o644, k % 3 ? {} : {xattrs: {'user.pad': Buffer.alloc(3000, 1)}}), lazy ? {size: n, dataRef: k} : {data: data[k]!}));
    return tree;
  };
  const reads: number[] = [];
  const lazy = erofsToBuffer(build(true), {readData: k => (reads.push(k), data[k]!)});
  t.true(lazy.equals(erofsToBuffer(build(false))));
  t.deepEqual([...new Set(reads)].sort((a, b) => a - b), sizes.map((_, k) => k), 'every file read');
  t.true(reads.length <= 2 * sizes.length, 'each at most twice');
  t.throws(() => erofsToBuffer(build(true), {readData: k => data[k]!.subarray(1)}), {code: 'EROFS_BAD_ENTRY'});
});
