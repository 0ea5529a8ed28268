import {spawnSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {strata, tempDir, tempStore} from './_cli.js';
import {peer} from './_peers.js';

// A checkout big enough to be written by the writing threads (HostWriter: several hundred
// entries, inline blobs and object files) gives back the imported tree exactly: bytes,
// modes (setuid and setgid after chown), owners, mtimes, xattrs and file capabilities,
// hardlinks, symlinks, devices, fifos, names that are not UTF-8, a directory without write
// permission. A damaged object file among them still fails the checkout with exit 3 and
// leaves nothing behind.

const MTIME = 1_600_000_000;
const B = (s: string, ...bytes: number[]) => Buffer.concat([Buffer.from(s), Buffer.from(bytes)]);
const at = (root: string, ...names: (string | Buffer)[]) => Buffer.concat([Buffer.from(root), ...names.flatMap(n => [Buffer.from('/'), Buffer.from(n)])]);

/** Deterministic bytes (a hash chain), distinct per seed. */
function bytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let i = 0; i < size; i += block.length) {
    block.copy(out, i);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

async function sourceTree(t: ExecutionContext): Promise<string> {
  const root = path.join(await tempDir(t), 'src');
  for (let d = 0; d < 12; d++) fs.mkdirSync(path.join(root, `d${d}`, 'sub'), {recursive: true});
  for (let i = 0; i < 360; i++) fs.writeFileSync(path.join(root, `d${i % 12}`, i % 3 ? 'sub' : '', `f${i}`), bytes(`small ${i}`, (i * 37) % 9000), {mode: i % 5 ? 0o644 : 0o755});
  for (let i = 0; i < 24; i++) fs.writeFileSync(path.join(root, `d${i % 12}`, `big${i}`), bytes(`big ${i}`, 20_000 + i * 7_000));
  fs.writeFileSync(path.join(root, 'huge'), bytes('huge', 3 * 1024 * 1024 + 11));
  fs.writeFileSync(path.join(root, 'empty'), '');
  // Hardlinks: inline and object-file content, within a directory and across.
  fs.linkSync(path.join(root, 'd0', 'f0'), path.join(root, 'd0', 'f0-link'));
  fs.linkSync(path.join(root, 'd1', 'big1'), path.join(root, 'd5', 'big1-link'));
  fs.linkSync(path.join(root, 'huge'), path.join(root, 'd7', 'sub', 'huge-link'));
  fs.symlinkSync('../huge', path.join(root, 'd3', 'to-huge'));
  fs.symlinkSync('/nowhere/at/all', path.join(root, 'dangling'));
  // Set-id bits on files not owned by root: chown after chmod would clear them.
  fs.writeFileSync(path.join(root, 'suid'), bytes('suid', 30_000));
  fs.lchownSync(path.join(root, 'suid'), 1000, 1000);
  fs.chmodSync(path.join(root, 'suid'), 0o4755);
  fs.writeFileSync(path.join(root, 'sgid'), 'sgid\n');
  fs.lchownSync(path.join(root, 'sgid'), 1001, 1002);
  fs.chmodSync(path.join(root, 'sgid'), 0o2711);
  fs.lchownSync(path.join(root, 'd2'), 1003, 1004);
  fs.lchownSync(path.join(root, 'd3', 'to-huge'), 1005, 1006);
  // A capability (chown clears it) and plain xattrs, on a file, a directory and a symlink.
  fs.writeFileSync(path.join(root, 'ping'), bytes('ping', 40_000));
  fs.lchownSync(path.join(root, 'ping'), 0, 1007);
  peer(t, 'setcap', ['cap_net_raw+ep', path.join(root, 'ping')]);
  peer(t, 'setfattr', ['-n', 'user.note', '-v', '0x00ff01', path.join(root, 'd4', 'sub', 'f4')]);
  peer(t, 'setfattr', ['-n', 'trusted.kept', '-v', 'yes', path.join(root, 'd4')]);
  peer(t, 'setfattr', ['-h', '-n', 'trusted.link', '-v', 'l', path.join(root, 'dangling')]);
  // Names that are not UTF-8: a directory, a file in it, an object file, a symlink.
  fs.mkdirSync(at(root, B('dir', 0xff)));
  fs.writeFileSync(at(root, B('dir', 0xff), B('f', 0x80)), 'bytes\n');
  fs.writeFileSync(at(root, B('big', 0xfe)), bytes('big fe', 50_000));
  fs.symlinkSync(B('t', 0xfe), at(root, B('l', 0xfd)));
  // Devices and a fifo, and directories without write permission or search for others.
  peer(t, 'mknod', [path.join(root, 'null'), 'c', '1', '3']);
  peer(t, 'mknod', [path.join(root, 'loop9'), 'b', '7', '9']);
  peer(t, 'mknod', [path.join(root, 'fifo'), 'p']);
  fs.chmodSync(path.join(root, 'd6'), 0o555);
  fs.chmodSync(path.join(root, 'd8'), 0o700);
  fs.chmodSync(path.join(root, 'd9'), 0o1777);
  // Directories last and deepest first, so their times stay.
  peer(t, 'sh', ['-c', `find "$1" -depth -exec touch -h -d @${MTIME} {} +`, 'sh', root]);
  fs.lutimesSync(path.join(root, 'd3'), MTIME + 9, MTIME + 9);
  return root;
}

interface Seen {
  readonly kind: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: number;
  readonly content?: string;
  readonly target?: string;
  readonly rdev?: number;
}

/** Every path under `root` by its bytes (hex), with what it is; hardlink groups; xattrs (getfattr). */
function describe(t: ExecutionContext, root: string): {paths: Record<string, Seen>; links: string[][]; xattrs: Record<string, string>} {
  const paths: Record<string, Seen> = {};
  const inodes = new Map<number, string[]>();
  const walk = (p: Buffer, rel: string) => {
    const st = fs.lstatSync(p);
    const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'other';
    paths[rel] = {
      kind, mode: kind === 'symlink' ? 0 : st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000),
      ...(kind === 'file' ? {content: createHash('sha256').update(fs.readFileSync(p)).digest('hex')} : {}),
      ...(kind === 'symlink' ? {target: fs.readlinkSync(p, {encoding: 'buffer'}).toString('hex')} : {}),
      ...(kind === 'char' || kind === 'block' ? {rdev: st.rdev} : {}),
    };
    if (kind === 'file' && st.nlink > 1) inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), rel]);
    if (kind === 'dir') for (const name of fs.readdirSync(p, {encoding: 'buffer'}).sort(Buffer.compare)) walk(Buffer.concat([p, Buffer.from('/'), name]), `${rel}/${name.toString('hex')}`);
  };
  walk(Buffer.from(root), '.');
  const dump = peer(t, 'getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '.'], {cwd: root});
  const xattrs: Record<string, string> = {};
  for (const block of dump.split('\n\n')) {
    const [head, ...lines] = block.trim().split('\n');
    if (!head?.startsWith('# file: ')) continue;
    const kept = lines.filter(l => !l.startsWith('security.selinux=')).sort();
    if (kept.length > 0) xattrs[head.slice(8)] = kept.join('\n');
  }
  return {paths, links: [...inodes.values()].map(g => g.sort()).sort(), xattrs};
}

test('a checkout written by the threads gives back every byte, owner, mode, time, xattr and link of the imported tree', async t => {
  if (process.getuid?.() !== 0) return t.fail('this test needs root (owners, devices, trusted.* xattrs, capabilities)');
  const src = await sourceTree(t);
  const store = await tempStore(t);
  const imported = await strata(['import', src, '--tag', 'tree:1'], {store});
  t.is(imported.code, 0, imported.stderr);
  const out = path.join(await tempDir(t), 'out');
  const r = await strata(['checkout', 'tree:1', out, '--json'], {store});
  t.is(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as {files: number; hardlinks: number; symlinks: number; skipped: string[]};
  t.deepEqual([report.hardlinks, report.symlinks, report.skipped], [3, 3, []]);
  t.true(report.files > 256, 'enough files for the writing threads');
  const want = describe(t, src), got = describe(t, out);
  t.deepEqual(got.paths, want.paths);
  t.deepEqual(got.links, want.links);
  t.deepEqual(got.xattrs, want.xattrs);
  t.regex(peer(t, 'getcap', [path.join(out, 'ping')]), /cap_net_raw[=+]ep/);
  t.deepEqual(fs.readdirSync(path.dirname(out)), ['out'], 'nothing left beside the target');
});

test('a damaged object file among hundreds of files fails the threaded checkout with exit 3 and leaves nothing', async t => {
  const src = path.join(await tempDir(t), 'src');
  fs.mkdirSync(src);
  for (let i = 0; i < 400; i++) fs.writeFileSync(path.join(src, `f${i}`), bytes(`f ${i}`, i % 10 ? 100 + i : 20_000 + i));
  const store = await tempStore(t);
  t.is((await strata(['import', src, '--tag', 'tree:1'], {store})).code, 0);
  // Flip one byte in the middle of one object file.
  const fan = path.join(store, 'objects', 'b3');
  const sub = fs.readdirSync(fan).sort()[0]!;
  const file = path.join(fan, sub, fs.readdirSync(path.join(fan, sub))[0]!);
  fs.chmodSync(file, 0o644);
  const damaged = fs.readFileSync(file);
  damaged[damaged.length >> 1]! ^= 1;
  fs.writeFileSync(file, damaged);
  const parent = path.join(await tempDir(t), 'new');
  const r = await strata(['checkout', 'tree:1', path.join(parent, 'out')], {store});
  t.is(r.code, 3, r.stderr);
  t.regex(r.stderr, /^strata: blob b3:[0-9a-f]{64} is damaged: [^\n]+\n$/);
  t.false(fs.existsSync(parent), 'neither the target nor the parent it made is left');
});
