import {once} from 'node:events';
import {spawn, spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {STRATA_BIN, strata, strataOnTerminal, tempDir} from './_cli.js';
import {busyboxRoot, ociLayoutOf, requirePeers} from './_busybox.js';
import {jsonOf, storeTemplate} from './_fixtures.js';
import {snapshot} from './_peers.js';

/**
 * bb:1, a busybox image built here from Debian's busybox-static, whose config runs a
 * report of what the process sees; bb:app, the same layer with user app, a working dir
 * and an entrypoint.
 */
const template = storeTemplate(async (store, scratch) => {
  requirePeers('runc', 'mkfs.erofs', 'busybox', 'perl');
  const root = busyboxRoot(path.join(scratch, 'root'), {'etc/motd': 'hello\n', 'srv/a': 'a\n', 'srv/c': 'c\n', 'srv/big': 'x'.repeat(100_000)});
  const mustImport = async (layout: string, tag: string) => {
    const r = await strata(['image', 'import', layout, '--tag', tag], {store});
    if (r.code !== 0) throw new Error(`image import: ${r.stderr}`);
  };
  await mustImport(ociLayoutOf(root, path.join(scratch, 'oci1'), {Env: ['GREETING=hi'], Cmd: ['sh', '-c', 'echo $GREETING from $(pwd) as $(id -u):$(id -g)']}), 'bb:1');
  await mustImport(ociLayoutOf(root, path.join(scratch, 'oci2'), {User: 'app', WorkingDir: '/srv', Entrypoint: ['sh', '-c'], Cmd: ['echo default']}), 'bb:app');
});

async function ok(t: ExecutionContext, args: string[], store: string, input?: string): Promise<string> {
  const r = await strata(args, {store, ...(input !== undefined ? {input} : {})});
  t.is(r.code, 0, `strata ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function mountsOf(store: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(l => l.includes(fs.realpathSync(store)));
}

/** Kills what a failed run left of its containers (runc's record names the store's bundle), so no process outlives the test. */
function killLeftRuns(store: string): void {
  const list = spawnSync('runc', ['list', '--format', 'json'], {encoding: 'utf8'});
  const runs = (JSON.parse(list.stdout || 'null') ?? []) as {id: string; bundle: string}[];
  for (const r of runs.filter(r => r.bundle.startsWith(fs.realpathSync(store)))) {
    spawnSync('runc', ['kill', r.id, 'KILL']);
    spawnSync('runc', ['delete', '--force', r.id]);
  }
}

test('run --rm runs the image config\'s command with its env, and leaves no container and no mount', async t => {
  const {store} = await template.copy(t);
  t.is(await ok(t, ['run', '--rm', 'bb:1'], store), 'hi from / as 0:0\n');
  t.deepEqual(JSON.parse(await ok(t, ['ps', '--json'], store)), []);
  t.deepEqual(mountsOf(store), []);
});

test('run takes the user, working dir and entrypoint of the image; -- CMD replaces the cmd only', async t => {
  const {store} = await template.copy(t);
  t.is(await ok(t, ['run', '--rm', 'bb:app'], store), 'default\n');
  t.is(await ok(t, ['run', '--rm', 'bb:app', '--', 'echo $(id -u):$(id -g) in $(pwd)'], store), '1000:1000 in /srv\n');
});

test('run passes the exit code, stdout and stderr through; stdin only with -i', async t => {
  const {store} = await template.copy(t);
  const r = await strata(['run', '--rm', 'bb:1', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7'], {store});
  t.deepEqual([r.code, r.stdout, r.stderr], [7, 'out\n', 'err\n']);
  t.is(await ok(t, ['run', '--rm', '-i', 'bb:1', '--', 'cat'], store, 'from stdin\n'), 'from stdin\n');
  t.is(await ok(t, ['run', '--rm', 'bb:1', '--', 'cat'], store, 'not passed\n'), '');
});

test('-t gives the process a terminal of its own; without a terminal on stdin it is refused and nothing is made', async t => {
  const {store} = await template.copy(t);
  const r = await strataOnTerminal(['run', '--rm', '-t', 'bb:1', '--', 'sh', '-c', '[ -t 0 ] && [ -t 1 ] && echo "on $(tty)"; exit 3'], {store});
  t.is(r.code, 3, r.output);
  t.regex(r.output, /on \/dev\/pts\/\d+\r?\n/);
  const piped = await strata(['run', '-t', '--name', 'nope', 'bb:1', '--', 'true'], {store});
  t.is(piped.code, 2);
  t.is(piped.stderr, 'strata: -t gives the process a terminal, but standard input is not one: run from a terminal, or leave -t out\n');
  t.deepEqual(jsonOf<unknown[]>(t, await strata(['ps', '--json'], {store})), []);
  t.deepEqual(mountsOf(store), []);
});

test('a signal sent to strata run reaches the process', async t => {
  const {store} = await template.copy(t);
  t.teardown(() => killLeftRuns(store));
  const child = spawn(STRATA_BIN, ['run', '--rm', 'bb:1', '--', 'sh', '-c', 'trap "echo got TERM; exit 3" TERM; echo ready; while true; do sleep 0.1; done'],
    {env: {...process.env, STRATA_STORE: store, NO_COLOR: '1'}, stdio: ['ignore', 'pipe', 'pipe']});
  let out = '', err = '';
  child.stderr.setEncoding('utf8').on('data', d => { err += d; });
  const exited = new Promise<{code: number | null; signal: NodeJS.Signals | null}>(resolve => child.on('exit', (code, signal) => resolve({code, signal})));
  const closed = once(child, 'close');
  const ready = new Promise<boolean>(resolve => {
    child.stdout.setEncoding('utf8').on('data', d => { out += d; if (out.includes('ready')) resolve(true); });
    void exited.then(() => resolve(false));
  });
  t.true(await ready, `strata run ended before its process said ready: ${err}`);
  child.kill('SIGTERM');
  // strata's own end, not its pipes' (a runc it left behind would hold them open forever).
  const end = await exited;
  t.deepEqual(end, {code: 3, signal: null}, `strata run: ${err}`);
  if (end.code === 3) await closed;
  t.is(out, 'ready\ngot TERM\n');
  t.deepEqual(mountsOf(store), []);
});

test('what a process changes, diff lists exactly; commit makes an image that mounts and exports as the same tree', async t => {
  requirePeers('umoci');
  const {store} = await template.copy(t);
  await ok(t, ['run', '--name', 'w', 'bb:1', '--', 'sh', '-c', 'echo new > /srv/new; rm /etc/motd; mv /srv/a /srv/b; chmod 600 /srv/c; mkdir /srv/d'], store);
  t.is(await ok(t, ['diff', 'w'], store), ['C /etc', 'D /etc/motd', 'C /srv', 'D /srv/a', 'A /srv/b', 'C /srv/c', 'A /srv/d', 'A /srv/new', ''].join('\n'));
  const commit = jsonOf<{image: string}>(t, await strata(['commit', 'w', '--tag', 'w:1', '--json'], {store}));
  t.truthy(commit.image);
  // The container and a new container of the committed image show one tree through their mounts.
  await ok(t, ['create', 'w:1', '--name', 'again'], store);
  const m1 = (await ok(t, ['mount', 'w'], store)).trim();
  const m2 = (await ok(t, ['mount', 'again'], store)).trim();
  t.teardown(async () => { await strata(['umount', 'w'], {store}); await strata(['umount', 'again'], {store}); });
  const seen = await snapshot(m1);
  t.deepEqual(await snapshot(m2), seen);
  t.is(fs.readFileSync(path.join(m2, 'srv', 'new'), 'utf8'), 'new\n');
  t.is(fs.statSync(path.join(m2, 'srv', 'c')).mode & 0o777, 0o600);
  // umoci unpacks the exported image to the same tree.
  const dir = await tempDir(t);
  await ok(t, ['image', 'export', 'w:1', path.join(dir, 'oci')], store);
  // umoci takes LAYOUT:TAG and cuts at the first colon, so the ref name w:1 is renamed.
  const index = path.join(dir, 'oci', 'index.json');
  fs.writeFileSync(index, fs.readFileSync(index, 'utf8').replace('"w:1"', '"w1"'));
  const u = spawnSync('umoci', ['unpack', '--image', `${path.join(dir, 'oci')}:w1`, path.join(dir, 'bundle')], {encoding: 'utf8'});
  t.is(u.status, 0, u.stderr);
  t.deepEqual(await snapshot(path.join(dir, 'bundle', 'rootfs')), seen);
});

test('commit refuses a file a process named .wh.*; the container is kept', async t => {
  const {store} = await template.copy(t);
  await ok(t, ['run', '--name', 'x', 'bb:1', '--', 'touch', '/srv/.wh.oops'], store);
  const r = await strata(['commit', 'x'], {store});
  t.is(r.code, 1);
  t.regex(r.stderr, /\/srv\/\.wh\.oops.*cannot be put in a layer/);
  t.is((await ok(t, ['diff', 'x'], store)), 'C /srv\nA /srv/.wh.oops\n');
});

test('ps says running while a process runs; umount and rm refuse then; rm --force stops it', async t => {
  const {store} = await template.copy(t);
  const child = spawn(STRATA_BIN, ['run', '--name', 'long', 'bb:1', '--', 'sh', '-c', 'echo ready; sleep 30'], {env: {...process.env, STRATA_STORE: store, NO_COLOR: '1'}, stdio: ['ignore', 'pipe', 'pipe']});
  const closed = new Promise<number | null>(resolve => child.on('close', c => resolve(c)));
  await new Promise<void>(resolve => child.stdout.on('data', d => { if (String(d).includes('ready')) resolve(); }));
  const ps = jsonOf<{name: string; status: string; mountPoint: string}[]>(t, await strata(['ps', '--json'], {store}));
  t.like(ps[0], {name: 'long', status: 'running'});
  const umount = await strata(['umount', 'long'], {store});
  t.is(umount.code, 1, `umount: ${umount.stdout}${umount.stderr}`);
  t.regex(umount.stderr, /still runs in container long/);
  const rm = await strata(['rm', 'long'], {store});
  t.is(rm.code, 1, `rm: ${rm.stdout}${rm.stderr}`);
  t.regex(rm.stderr, /is mounted at/);
  const forced = await strata(['rm', '--force', 'long'], {store});
  t.is(forced.code, 0, forced.stderr);
  t.not(await closed, 0);
  t.deepEqual(JSON.parse(await ok(t, ['ps', '--json'], store)), []);
  t.deepEqual(mountsOf(store), []);
});

/** The super options of the root mount a process in the container sees (its own mountinfo). */
function rootMountOptions(mountinfo: string): string[] {
  const root = mountinfo.split('\n').find(l => l.split(' ')[4] === '/');
  return root?.split(' - ')[1]?.split(' ')[2]?.split(',') ?? [];
}

/** Whether overlayfs says it skips syncs: `volatile`, or `fsync=volatile` as Linux 6.x shows it. */
const isVolatile = (options: string[]) => options.includes('volatile') || options.includes('fsync=volatile');

test('run --rm mounts the container volatile (no syncs of a layer that goes); run without --rm does not', async t => {
  const {store} = await template.copy(t);
  t.true(isVolatile(rootMountOptions(await ok(t, ['run', '--rm', 'bb:1', '--', 'cat', '/proc/self/mountinfo'], store))));
  const kept = rootMountOptions(await ok(t, ['run', '--name', 'kept', 'bb:1', '--', 'cat', '/proc/self/mountinfo'], store));
  const [record] = jsonOf<{id: string}[]>(t, await strata(['ps', '--json'], {store}));
  t.true(kept.includes(`upperdir=${path.join(fs.realpathSync(store), 'containers', record!.id, 'upper')}`), kept.join(','));
  t.false(isVolatile(kept));
  // The kept container mounts again (no volatile mark in its work dir).
  t.is(await ok(t, ['run', 'kept', '--', 'cat', '/srv/a'], store), 'a\n');
});

test('a container left by a run --rm that did not finish is refused by mount in one line; rm removes it', async t => {
  const {store} = await template.copy(t);
  await ok(t, ['create', 'bb:1', '--name', 'left'], store);
  const [record] = jsonOf<{id: string}[]>(t, await strata(['ps', '--json'], {store}));
  // The mark the kernel leaves in the work dir of a volatile overlay mount (overlayfs.rst, "Volatile mount").
  fs.mkdirSync(path.join(store, 'containers', record!.id, 'work', 'work', 'incompat', 'volatile'), {recursive: true});
  const r = await strata(['mount', 'left'], {store});
  t.is(r.code, 1);
  t.regex(r.stderr, /^strata: container left was left by a "strata run --rm" that did not finish.*"strata rm" it\n$/);
  t.deepEqual(mountsOf(store), []);
  await ok(t, ['rm', 'left'], store);
  t.deepEqual(JSON.parse(await ok(t, ['ps', '--json'], store)), []);
});
