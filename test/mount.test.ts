import {spawn, spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {strata, tempDir, tempStore} from './_cli.js';
import {busyboxRoot, requirePeers} from './_busybox.js';
import {jsonOf, paxRecords, writeTar} from './_fixtures.js';

async function withContainer(t: ExecutionContext): Promise<string> {
  requirePeers('mkfs.erofs', 'perl');
  const store = await tempStore(t);
  const root = busyboxRoot(path.join(await tempDir(t), 'root'), {'etc/motd': 'hello\n'});
  for (const args of [['import', root, '--tag', 'bb:1'], ['create', 'bb:1', '--name', 'web']])
    t.is((await strata(args, {store})).code, 0);
  t.teardown(() => strata(['umount', 'web'], {store}));
  return store;
}

test('mount prints the mount point, is idempotent, and the kernel serves the container there', async t => {
  const store = await withContainer(t);
  const first = await strata(['mount', 'web'], {store});
  t.is(first.code, 0, first.stderr);
  const at = first.stdout.trim();
  t.is((await strata(['mount', 'web'], {store})).stdout.trim(), at);
  t.is(fs.readFileSync(path.join(at, 'etc', 'motd'), 'utf8'), 'hello\n');
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(l => l.includes(at));
  t.is(mounts.length, 1);
  t.regex(mounts[0]!, /overlay overlay .*lowerdir=.*::.*\/objects,upperdir=.*redirect_dir=nofollow/);
  const ps = jsonOf<{status: string; mountPoint: string}[]>(t, await strata(['ps', '--json'], {store}));
  t.like(ps[0], {status: 'mounted', mountPoint: at});
  // strata's own writes go through the mount, and the process side sees them at once.
  t.is((await strata(['fs', 'web', 'write', '/etc/new'], {store, input: 'via strata\n'})).code, 0);
  t.is(fs.readFileSync(path.join(at, 'etc', 'new'), 'utf8'), 'via strata\n');
  fs.writeFileSync(path.join(at, 'etc', 'made'), 'by a process\n');
  t.is((await strata(['fs', 'web', 'cat', '/etc/made'], {store})).stdout, 'by a process\n');
  t.is((await strata(['diff', 'web'], {store})).stdout, 'C /etc\nA /etc/made\nA /etc/new\n');
  t.is((await strata(['umount', 'web'], {store})).code, 0);
  t.deepEqual(fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(l => l.includes(fs.realpathSync(store))), []);
  t.is((await strata(['diff', 'web'], {store})).stdout, 'C /etc\nA /etc/made\nA /etc/new\n', 'the changes stay in the writable layer');
});

test('mount refuses an unknown container, another directory while mounted, and a busy mount point', async t => {
  const store = await withContainer(t);
  const unknown = await strata(['mount', 'nosuch'], {store});
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /there is no container "nosuch"/);
  const dir = await tempDir(t);
  const busy = path.join(dir, 'busy');
  fs.mkdirSync(busy);
  fs.writeFileSync(path.join(busy, 'file'), 'x');
  const notEmpty = await strata(['mount', 'web', busy], {store});
  t.is(notEmpty.code, 1);
  t.regex(notEmpty.stderr, /is not empty/);
  const taken = path.join(dir, 'taken');
  fs.mkdirSync(taken);
  t.is(spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', taken]).status, 0);
  t.teardown(() => { spawnSync('umount', [taken]); });
  const mountPoint = await strata(['mount', 'web', taken], {store});
  t.is(mountPoint.code, 1);
  t.regex(mountPoint.stderr, /already a mount point/);
  const mine = path.join(dir, 'mine');
  t.is((await strata(['mount', 'web', mine], {store})).stdout.trim(), fs.realpathSync(mine));
  const elsewhere = await strata(['mount', 'web', path.join(dir, 'other')], {store});
  t.is(elsewhere.code, 1);
  t.regex(elsewhere.stderr, /already mounted at/);
  const rm = await strata(['rm', 'web'], {store});
  t.is(rm.code, 1);
  t.regex(rm.stderr, /is mounted at .*rm --force/);
  // A process with its working directory in the mount keeps it busy.
  const holder = spawn('sleep', ['60'], {cwd: mine, stdio: 'ignore'});
  const gone = new Promise(resolve => holder.on('close', resolve));
  const umount = await strata(['umount', 'web'], {store});
  t.is(umount.code, 1);
  t.regex(umount.stderr, /is busy/);
  holder.kill();
  await gone;
  t.is((await strata(['umount', 'web'], {store})).code, 0);
});

test('gc keeps everything a mounted container uses, and what it still reads', async t => {
  const store = await withContainer(t);
  const at = (await strata(['mount', 'web'], {store})).stdout.trim();
  t.is((await strata(['image', 'rm', 'bb:1'], {store})).code, 1, 'an image a container uses is kept');
  const gc = await strata(['gc'], {store});
  t.is(gc.code, 0, gc.stderr);
  t.is(fs.readFileSync(path.join(at, 'bin', 'busybox')).length > 100_000, true);
  t.is(fs.readFileSync(path.join(at, 'etc', 'motd'), 'utf8'), 'hello\n');
  t.is((await strata(['verify'], {store})).code, 0);
});

test('verify re-hashes spilled files: a damaged one is a problem, and --repair makes the next mount spill it again', async t => {
  requirePeers('mkfs.erofs', 'perl', 'b3sum');
  const store = await tempStore(t);
  // 10 KiB: an inline (LevelDB) blob too large for the metadata image, so it is spilled.
  const content = 'spilled line\n'.repeat(800);
  const root = busyboxRoot(path.join(await tempDir(t), 'root'), {'etc/big.conf': content});
  for (const args of [['import', root, '--tag', 'bb:1'], ['create', 'bb:1', '--name', 'web']]) {
    const r = await strata(args, {store});
    t.is(r.code, 0, r.stderr);
  }
  t.teardown(() => strata(['umount', 'web'], {store}));
  const mounted = await strata(['mount', 'web'], {store});
  t.is(mounted.code, 0, mounted.stderr);
  t.is((await strata(['umount', 'web'], {store})).code, 0);
  const hex = spawnSync('b3sum', ['--no-names'], {input: content, encoding: 'utf8'}).stdout.trim();
  const spilled = path.join(store, 'objects', 'small', hex.slice(0, 2), hex.slice(2));
  t.is(fs.readFileSync(spilled, 'utf8'), content, 'the mount spilled the blob under its digest');
  const before = await strata(['verify'], {store});
  t.is(before.code, 0, before.stdout + before.stderr);

  fs.chmodSync(spilled, 0o644);
  fs.writeFileSync(spilled, content.replace('spilled', 'damaged'));
  const found = await strata(['verify'], {store});
  t.is(found.code, 3);
  t.regex(found.stdout, new RegExp(`the spilled copy of blob b3:${hex} \\(objects/small/\\): its bytes do not hash to its name`));
  const json = JSON.parse((await strata(['verify', '--json'], {store})).stdout) as {problems: {object: string; kind: string}[]};
  t.deepEqual(json.problems.map(p => [p.object, p.kind]), [[`small:b3:${hex}`, 'corrupt']]);

  const repaired = await strata(['verify', '--repair'], {store});
  t.is(repaired.code, 0, `repair: ${repaired.stdout}${repaired.stderr}`);
  t.false(fs.existsSync(spilled), 'the damaged file is removed');
  t.deepEqual(fs.readdirSync(path.join(store, 'meta')).filter(n => n.endsWith('.erofs')), [], 'and the image that redirected to it');
  const at = (await strata(['mount', 'web'], {store})).stdout.trim();
  t.is(fs.readFileSync(path.join(at, 'etc', 'big.conf'), 'utf8'), content, 'the next mount serves the right bytes');
  const after = await strata(['verify'], {store});
  t.is(after.code, 0, after.stdout + after.stderr);
});

test('a tree EROFS cannot hold is NOT_MOUNTABLE: one line, exit 1, the store unchanged', async t => {
  requirePeers('perl');
  const store = await tempStore(t);
  // An xattr outside the namespaces EROFS names (user., trusted., security., system.posix_acl_*): tar keeps it, a layer too.
  const tar = await writeTar(path.join(await tempDir(t), 'odd.tar'), [
    {name: 'PaxHeaders/odd', type: 'x', content: paxRecords({'SCHILY.xattr.other.note': 'v'})},
    {name: 'odd', content: 'odd\n'},
  ]);
  for (const args of [['import', tar, '--tag', 'odd:1'], ['create', 'odd:1', '--name', 'odd']]) {
    const r = await strata(args, {store});
    t.is(r.code, 0, r.stderr);
  }
  t.teardown(() => strata(['umount', 'odd'], {store}));
  const r = await strata(['mount', 'odd'], {store});
  t.is(r.code, 1, r.stderr);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^strata: tree b3:[0-9a-f]{64} cannot be mounted: .*xattr "other\.note", which has no prefix EROFS can store .*\(EROFS_BAD_XATTR\)\n$/);
  t.notRegex(r.stderr, /\bat .*:\d+:\d+/);
  t.deepEqual(fs.readdirSync(path.join(store, 'tmp')), [], 'nothing half-written is left');
  t.is((await strata(['cat', 'odd:1', '/odd'], {store})).stdout, 'odd\n', 'the image still reads');
});
