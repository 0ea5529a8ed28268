import {spawn, spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {strata, tempDir, tempStore} from './_cli.js';
import {busyboxRoot, requirePeers} from './_busybox.js';
import {jsonOf, paxRecords, writeTar} from './_fixtures.js';
import {snapshot} from './_peers.js';

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
  t.regex(mounts[0]!, /overlay overlay .*lowerdir=.*::.*\/objects(::[^,]*\/pack0)?,upperdir=.*redirect_dir=nofollow/);
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

/** `count` files of 3–12 KiB under `dir` in `root`: inline blobs too large for a metadata image, so they go into packs. */
function smallFiles(root: string, dir: string, count: number): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < count; i++) files[`${dir}/f${i}`] = `${dir} ${i}\n`.repeat(Math.floor((3072 + i * 457) / (dir.length + 4)));
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), {recursive: true});
    fs.writeFileSync(path.join(root, rel), content);
  }
  return files;
}

/** The pack files (`packs/<hex>.erofs`) of the store, sorted. */
const packsOf = (store: string): string[] => (fs.existsSync(path.join(store, 'packs')) ? fs.readdirSync(path.join(store, 'packs')).filter(n => n.endsWith('.erofs')).sort() : []);

/** The overlay mount at `at`, from mountinfo: its lowerdir, split. */
function lowersOf(at: string): string[] {
  const line = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find(l => l.split(' ')[4] === at);
  return /lowerdir=([^,]*)/.exec(line ?? '')?.[1]?.split('::') ?? [];
}

async function ok(t: ExecutionContext, args: string[], store: string): Promise<string> {
  const r = await strata(args, {store});
  t.is(r.code, 0, `strata ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

test('an image whose small blobs span two packs mounts as strata checkout writes it; gc removes the pack no image needs and keeps the one that is', async t => {
  requirePeers('perl');
  const store = await tempStore(t);
  const dir = await tempDir(t);
  const one = busyboxRoot(path.join(dir, 'one'));
  smallFiles(one, 'etc/a', 30);
  const two = busyboxRoot(path.join(dir, 'two'));
  smallFiles(two, 'etc/a', 30);
  smallFiles(two, 'srv/b', 25);
  await ok(t, ['import', one, '--tag', 'one:1'], store);
  await ok(t, ['import', two, '--tag', 'two:1'], store);
  await ok(t, ['create', 'one:1', '--name', 'one'], store);
  await ok(t, ['create', 'two:1', '--name', 'two'], store);
  t.teardown(async () => { await strata(['umount', 'one'], {store}); await strata(['umount', 'two'], {store}); });

  const atOne = (await ok(t, ['mount', 'one'], store)).trim();
  t.is(packsOf(store).length, 1, 'the first mount packs the small blobs of its image');
  const first = packsOf(store)[0]!;
  t.is(lowersOf(atOne).length, 3, 'META::OBJECTS::PACK');
  await ok(t, ['umount', 'one'], store);

  // The second image shares etc/a with the first: it reuses that pack and packs only srv/b.
  const atTwo = (await ok(t, ['mount', 'two'], store)).trim();
  t.is(packsOf(store).length, 2);
  const second = packsOf(store).find(n => n !== first)!;
  const lowers = lowersOf(atTwo);
  t.is(lowers.length, 4, 'META::OBJECTS::PACK0::PACK1');
  t.true(lowers[1]!.endsWith('/objects'));
  const checkedOut = path.join(dir, 'checkout');
  await ok(t, ['checkout', 'two:1', checkedOut], store);
  t.deepEqual(await snapshot(atTwo), await snapshot(checkedOut), 'the same names, kinds, modes, owners and bytes');
  t.is(fs.readFileSync(path.join(atTwo, 'srv', 'b', 'f3'), 'utf8'), fs.readFileSync(path.join(two, 'srv', 'b', 'f3'), 'utf8'));

  // Mounted, the container's image is live: gc keeps both packs.
  await ok(t, ['gc'], store);
  t.deepEqual(packsOf(store), [first, second].sort());
  t.is(fs.readFileSync(path.join(atTwo, 'etc', 'a', 'f7'), 'utf8'), fs.readFileSync(path.join(two, 'etc', 'a', 'f7'), 'utf8'));
  await ok(t, ['umount', 'two'], store);
  await ok(t, ['rm', 'two'], store);
  await ok(t, ['image', 'rm', 'two:1'], store);
  const df = JSON.parse(await ok(t, ['df', '--json'], store)) as {derived: {pack: {count: number}; metaImage: {count: number}}};
  t.deepEqual([df.derived.metaImage.count, df.derived.pack.count], [2, 2], 'df shows the images and packs');
  const gc = JSON.parse(await ok(t, ['gc', '--json'], store)) as {byKind: {pack: {count: number}; metaImage: {count: number}}};
  t.deepEqual([gc.byKind.metaImage.count, gc.byKind.pack.count], [1, 1], 'the image of two:1 goes, and the pack only it needed');
  t.deepEqual(packsOf(store), [first], 'the pack image one:1 needs stays');
  t.false(fs.existsSync(path.join(store, 'packs', second.replace(/\.erofs$/, '.blobs'))), 'with its list of blobs');
  const again = (await ok(t, ['mount', 'one'], store)).trim();
  t.is(fs.readFileSync(path.join(again, 'etc', 'a', 'f29'), 'utf8'), fs.readFileSync(path.join(one, 'etc', 'a', 'f29'), 'utf8'));
  t.is((await strata(['verify'], {store})).code, 0);
});

test('verify re-hashes small-blob packs: a damaged one is a problem, and --repair makes the next mount pack its blobs again', async t => {
  requirePeers('perl');
  const store = await tempStore(t);
  // 10 KiB: an inline (LevelDB) blob too large for the metadata image, so it goes into a pack.
  const content = 'packed line\n'.repeat(850);
  const root = busyboxRoot(path.join(await tempDir(t), 'root'), {'etc/big.conf': content});
  await ok(t, ['import', root, '--tag', 'bb:1'], store);
  await ok(t, ['create', 'bb:1', '--name', 'web'], store);
  t.teardown(() => strata(['umount', 'web'], {store}));
  await ok(t, ['mount', 'web'], store);
  await ok(t, ['umount', 'web'], store);
  const [name] = packsOf(store);
  t.truthy(name, 'the mount wrote a pack');
  const pack = path.join(store, 'packs', name!);
  await ok(t, ['verify'], store);

  // Change the blob's bytes inside the pack, keeping its size.
  const bytes = fs.readFileSync(pack);
  const at = bytes.indexOf('packed line');
  t.true(at > 0);
  bytes.write('damage', at);
  fs.chmodSync(pack, 0o644);
  fs.writeFileSync(pack, bytes);
  const found = await strata(['verify'], {store});
  t.is(found.code, 3);
  t.regex(found.stdout, new RegExp(`the small-blob pack packs/${name!.replace('.erofs', '')}\\.erofs: its bytes do not hash to its name`));
  const json = JSON.parse((await strata(['verify', '--json'], {store})).stdout) as {problems: {object: string; kind: string}[]};
  t.deepEqual(json.problems.map(p => [p.object, p.kind]), [[`pack:b3:${name!.replace('.erofs', '')}`, 'corrupt']]);

  const repaired = await strata(['verify', '--repair'], {store});
  t.is(repaired.code, 0, `repair: ${repaired.stdout}${repaired.stderr}`);
  t.false(fs.existsSync(pack), 'the damaged pack is removed');
  t.deepEqual(fs.readdirSync(path.join(store, 'meta')).filter(n => n.endsWith('.erofs')), [], 'and the image that needed it');
  const mounted = (await ok(t, ['mount', 'web'], store)).trim();
  t.is(fs.readFileSync(path.join(mounted, 'etc', 'big.conf'), 'utf8'), content, 'the next mount serves the right bytes');
  t.deepEqual(packsOf(store), [name], 'from the same pack, written again');
  await ok(t, ['verify'], store);
});

test('a kill -9 while the metadata image and its pack are written leaves nothing half-written in use: verify passes, the next mount serves the tree', async t => {
  requirePeers('perl');
  const store = await tempStore(t);
  const dir = await tempDir(t);
  const root = busyboxRoot(path.join(dir, 'root'));
  smallFiles(root, 'srv/many', 1500);
  await ok(t, ['import', root, '--tag', 'many:1'], store);
  await ok(t, ['create', 'many:1', '--name', 'many'], store);
  t.teardown(() => strata(['umount', 'many'], {store}));
  // How long a whole first mount takes here (a second one: the first also fills the CLI's caches); kills land at fractions of it.
  let whole = 0;
  for (let i = 0; i < 2; i++) {
    for (const sub of ['meta', 'packs']) fs.rmSync(path.join(store, sub), {recursive: true, force: true});
    const started = Date.now();
    await ok(t, ['mount', 'many'], store);
    whole = Date.now() - started;
    await ok(t, ['umount', 'many'], store);
  }
  const checkedOut = path.join(dir, 'checkout');
  await ok(t, ['checkout', 'many:1', checkedOut], store);
  const expected = await snapshot(checkedOut);
  // Kills land part-way: a mount that finished makes the next kill earlier, a killed one the next later (this machine's speed varies).
  let killed = 0;
  let delay = whole * 0.5;
  for (let i = 0; i < 5; i++) {
    for (const sub of ['meta', 'packs']) fs.rmSync(path.join(store, sub), {recursive: true, force: true});
    const killAt = Math.round(delay);
    const r = await strata(['mount', 'many'], {store, timeoutMs: killAt});
    if (r.code === -1) killed++;
    delay *= r.code === -1 ? 1.25 : 0.6;
    await ok(t, ['umount', 'many'], store);
    await ok(t, ['verify'], store);
    // Whatever the kill left under its name is whole, and names packs that are whole: the next mount uses it.
    const at = (await ok(t, ['mount', 'many'], store)).trim();
    t.deepEqual(await snapshot(at), expected, `a mount killed after ${killAt} ms (${r.code === -1 ? 'killed' : 'finished'})`);
    await ok(t, ['umount', 'many'], store);
  }
  t.true(killed > 0, 'some mount was killed part-way');
  await ok(t, ['gc'], store);
  t.deepEqual(fs.readdirSync(path.join(store, 'tmp')), [], 'gc removes what the kills left in tmp/');
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

test('a disk that fills while the metadata image and its pack are written: NO_SPACE in one line, nothing left half-written, and the next mount with room serves the tree', async t => {
  requirePeers('perl');
  const {smallDisk} = await import('./_disk.js');
  const mnt = await smallDisk(t, 32);
  const store = path.join(mnt, 'store');
  const root = path.join(await tempDir(t), 'root');
  // 400 small files for a pack (3-8 KiB: about 2 MiB) and some kept in the image.
  for (let i = 0; i < 440; i++) {
    fs.mkdirSync(path.join(root, `d${i % 8}`), {recursive: true});
    fs.writeFileSync(path.join(root, `d${i % 8}`, `f${i}`), Buffer.alloc(i < 400 ? 3000 + 13 * i : 100 + i, i % 251));
  }
  for (const args of [['init'], ['import', root, '--tag', 'small:1'], ['create', 'small:1', '--name', 'small']]) {
    const r = await strata(args, {store});
    t.is(r.code, 0, r.stderr);
  }
  t.teardown(() => strata(['umount', 'small'], {store}));
  // The import packed the layer's small blobs; without that pack (a store from before layer
  // packs, or one verify --repair removed) the mount writes a pack of its own.
  fs.rmSync(path.join(store, 'packs'), {recursive: true});
  // Leave ~1 MiB free: less than the pack needs.
  const {bsize, blocks, bfree} = fs.statfsSync(mnt);
  const usedKiB = Math.ceil((blocks - bfree) * bsize / 1024);
  t.is(spawnSync('mount', ['-o', `remount,size=${usedKiB + 1024}k`, mnt]).status, 0);
  const r = await strata(['mount', 'small'], {store});
  t.is(r.code, 1, r.stdout + r.stderr);
  t.regex(r.stderr, /^strata: [^\n]*disk is full[^\n]*\n$/);
  for (const dir of ['meta', 'packs', 'tmp']) t.deepEqual(fs.existsSync(path.join(store, dir)) ? fs.readdirSync(path.join(store, dir)) : [], [], `nothing left in ${dir}/`);
  // With room again, the mount builds the image and serves every file.
  t.is(spawnSync('mount', ['-o', 'remount,size=64m', mnt]).status, 0);
  const at = await strata(['mount', 'small'], {store});
  t.is(at.code, 0, at.stderr);
  const checkedOut = path.join(await tempDir(t), 'checkout');
  t.is((await strata(['checkout', 'small:1', checkedOut], {store})).code, 0);
  t.deepEqual(await snapshot(at.stdout.trim()), await snapshot(checkedOut));
  t.is((await strata(['umount', 'small'], {store})).code, 0);
  t.is((await strata(['verify'], {store})).code, 0);
});
