import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {strata, strataOnTerminal, tempDir, tempStore} from './_cli.js';
import {jsonOf, writeTar} from './_fixtures.js';

// Messages that point the right way: each case runs the real binary and checks the one
// line on stderr and the exit code (README, "Exit codes").

async function storeWithBase(t: ExecutionContext): Promise<{store: string; image: string; layer: string; dir: string}> {
  const store = await tempStore(t);
  const dir = await tempDir(t);
  const tar = await writeTar(path.join(dir, 'base.tar'), [{name: 'etc/', type: '5'}, {name: 'etc/hostname', content: 'base\n'}]);
  const r = jsonOf<{image: string; layer: string}>(t, await strata(['import', tar, '--tag', 'base:1', '--json'], {store}));
  return {store, image: r.image, layer: r.layer, dir};
}

/** `dir` mounted again read-only at a new place (a real EROFS), unmounted when the test ends. */
function readOnlyMount(t: ExecutionContext, dir: string, at: string): void {
  const run = (args: string[]) => {
    const r = spawnSync('mount', args, {encoding: 'utf8'});
    if (r.status !== 0) throw new Error(`mount ${args.join(' ')} failed (this test needs root): ${r.stderr}`);
  };
  run(['--bind', dir, at]);
  t.teardown(() => { spawnSync('umount', [at]); });
  run(['-o', 'remount,bind,ro', at]);
}

test.serial('a read-only store serves the commands that only read, and refuses the others with exit 1', async t => {
  const {store, dir} = await storeWithBase(t);
  const ro = path.join(dir, 'ro');
  await fs.mkdir(ro);
  const before = (await fs.readdir(path.join(store, 'index'))).sort();
  readOnlyMount(t, store, ro);
  const images = await strata(['images', '--json', '--store', ro]);
  t.is(images.code, 0, images.stderr);
  t.deepEqual(jsonOf<{tags: string[]}[]>(t, images).map(i => i.tags), [['base:1']]);
  const cat = await strata(['cat', 'base:1', '/etc/hostname', '--store', ro]);
  t.is(cat.code, 0, cat.stderr);
  t.is(cat.stdout, 'base\n');
  t.is((await strata(['verify', '--store', ro])).code, 0);
  const tag = await strata(['image', 'tag', 'base:1', 'base:2', '--store', ro]);
  t.is(tag.code, 1);
  t.is(tag.stderr, `strata: the store at ${ro} is on a read-only filesystem, and this command changes it\n`);
  t.notRegex(tag.stderr, /verify/);
  t.deepEqual((await fs.readdir(path.join(store, 'index'))).sort(), before);
});

test('cat and ls of a missing path name the image and the path, as container errors do', async t => {
  const {store} = await storeWithBase(t);
  const cat = await strata(['cat', 'base:1', '/nonexist'], {store});
  t.is(cat.code, 1);
  t.is(cat.stderr, 'strata: base:1:/nonexist: no such file or directory (open)\n');
  const ls = await strata(['ls', 'base:1', '/nope'], {store});
  t.is(ls.code, 1);
  t.regex(ls.stderr, /^strata: base:1:\/nope: no such file or directory \(\w+\)\n$/);
});

test('a store path that is a file says so', async t => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'file');
  await fs.writeFile(file, 'x');
  for (const args of [['images'], ['init']]) {
    const r = await strata([...args, '--store', file]);
    t.is(r.code, 1, args.join(' '));
    t.is(r.stderr, `strata: ${file} cannot be a store: it (or a directory above it) is a file\n`);
  }
});

test('image and layer id prefixes follow one rule: at least 4 hex digits, and the message says so', async t => {
  const {store, image, layer} = await storeWithBase(t);
  const img = await strata(['image', 'inspect', image.slice(3, 6)], {store});
  t.is(img.code, 1);
  t.is(img.stderr, `strata: there is no image "${image.slice(3, 6)}" (no such tag, and an id prefix needs at least 4 hex digits)\n`);
  const lay = await strata(['layer', 'inspect', layer.slice(3, 6)], {store});
  t.is(lay.code, 1);
  t.is(lay.stderr, `strata: there is no layer "${layer.slice(3, 6)}": an id prefix needs at least 4 hex digits\n`);
  for (const [kind, id] of [['image', image], ['layer', layer]] as const)
    t.is((await strata([kind, 'inspect', id.slice(3, 7)], {store})).code, 0, `${kind} by 4 digits`);
});

test("--store '' is a usage error, not the default store", async t => {
  const r = await strata(['gc', '--store', ''], {env: {XDG_DATA_HOME: await tempDir(t)}});
  t.is(r.code, 2);
  t.is(r.stderr, 'strata: --store needs a directory (it was given an empty string)\n');
});

test('fs --help and image --help list their sub-commands; help names option values', async t => {
  for (const [group, some] of [['fs', ['strata fs write', 'strata fs ls']], ['image', ['strata image import', 'strata image export']], ['pin', ['strata pin add']]] as const) {
    const r = await strata([group, '--help']);
    t.is(r.code, 0, r.stderr);
    for (const s of some) t.true(r.stdout.includes(`  ${s} `), `${group}: ${s}`);
    t.false(r.stdout.includes('strata images'), group);
  }
  const bare = await strata(['fs']);
  t.is(bare.code, 2);
  t.regex(bare.stderr, /strata fs write/);
  const help = await strata(['import', '--help']);
  t.notRegex(help.stdout, /#0/);
  t.regex(help.stdout, /--store DIR/);
  t.regex(help.stdout, /--tag NAME:TAG/);
});

test('a command that does not exist is one line naming the nearest command, exit 2', async t => {
  for (const [args, line] of [
    [['imgaes'], 'strata: there is no command "strata imgaes" (did you mean "strata images"?); "strata --help" lists the commands'],
    [['image', 'inspct', 'x'], 'strata: there is no command "strata image inspct" (did you mean "strata image inspect"?); "strata image --help" lists the commands'],
    [['fs', 'web', 'lss', '/'], 'strata: there is no command "strata fs lss" (did you mean "strata fs ls"?); "strata fs --help" lists the commands'],
    [['frobnicate', '--json'], 'strata: there is no command "strata frobnicate"; "strata --help" lists the commands'],
  ] as const) {
    const r = await strata(args);
    t.is(r.code, 2, args.join(' '));
    t.is(r.stderr, `${line}\n`);
    t.is(r.stdout, '');
  }
  // Words after a command are its arguments, not a misspelt command.
  const extra = await strata(['images', 'extra']);
  t.is(extra.code, 2);
  t.regex(extra.stderr, /Extraneous positional argument/);
});

test('strata help [COMMAND] prints what --help does', async t => {
  for (const words of [[], ['image'], ['create'], ['image', 'inspect']]) {
    const asked = await strata(['help', ...words]);
    const option = await strata([...words, '--help']);
    t.is(asked.code, 0, asked.stderr);
    t.is(asked.stdout, option.stdout, words.join(' '));
    t.true(asked.stdout.length > 100);
  }
});

test('results the next gc would remove are pointed out', async t => {
  const {store, dir} = await storeWithBase(t);
  const tar = await writeTar(path.join(dir, 'more.tar'), [{name: 'more', content: 'more\n'}]);
  const untagged = await strata(['import', tar], {store});
  t.is(untagged.code, 0);
  t.regex(untagged.stderr, /^strata: no tag or pin keeps layer [0-9a-f]{12}, so the next "strata gc" removes it; import with --tag NAME:TAG to keep it\n$/);
  // A layer a tagged image uses needs no warning.
  const again = await strata(['import', path.join(dir, 'base.tar')], {store});
  t.is(again.stderr, '');
  t.is((await strata(['create', 'base:1', '--name', 'web'], {store})).code, 0);
  const commit = await strata(['commit', 'web'], {store});
  t.regex(commit.stderr, /^strata: image [0-9a-f]{12} has no tag, so the next "strata gc" removes it/);
});

test('names with control characters are escaped on a terminal and exact in a pipe', async t => {
  const store = await tempStore(t);
  const dir = await tempDir(t);
  const tar = await writeTar(path.join(dir, 'odd.tar'), [{name: 'a\nb', content: 'x'}, {name: 'esc\u001b[2J', content: 'y'}]);
  t.is((await strata(['import', tar, '--tag', 'odd:1'], {store})).code, 0);
  const piped = await strata(['ls', 'odd:1'], {store});
  t.is(piped.stdout, 'a\nb\nesc\u001b[2J\n');
  const shown = await strataOnTerminal(['ls', 'odd:1'], {store});
  t.is(shown.code, 0);
  t.is(shown.output.replace(/\r\n/g, '\n'), 'a\\nb\nesc\\033[2J\n');
  t.deepEqual(jsonOf<{name: string}[]>(t, await strata(['ls', 'odd:1', '--json'], {store})).map(e => e.name), ['a\nb', 'esc\u001b[2J']);
});

test('a tar entry that overruns the archive is named with its declared size', async t => {
  const store = await tempStore(t);
  const dir = await tempDir(t);
  const tar = await writeTar(path.join(dir, 'whole.tar'), [{name: 'big.bin', content: 'x'.repeat(100_000)}]);
  const cut = path.join(dir, 'cut.tar');
  await fs.writeFile(cut, (await fs.readFile(tar)).subarray(0, 512 + 50_000));
  const r = await strata(['import', cut], {store});
  t.is(r.code, 1);
  t.regex(r.stderr, /^strata: the archive is truncated or corrupt: it ends inside "big\.bin", which declares 100000 bytes \(.*\)\n$/);
});

test('a symlinked blob in a layout is named as a link, not as missing', async t => {
  const {store, dir} = await storeWithBase(t);
  const layout = path.join(dir, 'layout');
  t.is((await strata(['image', 'export', 'base:1', layout], {store})).code, 0);
  const index = JSON.parse(await fs.readFile(path.join(layout, 'index.json'), 'utf8')) as {manifests: {digest: string}[]};
  const manifest = JSON.parse(await fs.readFile(path.join(layout, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as {layers: {digest: string}[]};
  const blob = path.join(layout, 'blobs', 'sha256', manifest.layers[0]!.digest.slice(7));
  await fs.rename(blob, path.join(dir, 'elsewhere'));
  await fs.symlink(path.join(dir, 'elsewhere'), blob);
  const r = await strata(['image', 'import', layout], {store: await tempStore(t)});
  t.is(r.code, 1);
  t.regex(r.stderr, /the layer blob sha256:[0-9a-f]{64} is a symbolic link; strata reads only regular files in a layout/);
});

test('a reader that goes away (strata … | head) ends the command quietly, with its exit code', async t => {
  const store = await tempStore(t);
  const src = await tempDir(t);
  for (let i = 0; i < 300; i++) await fs.writeFile(path.join(src, `file-${i}`), `${i}\n`);
  t.is((await strata(['import', src, '--tag', 'base:1'], {store})).code, 0);
  // The reader closes its end before strata writes: every write meets EPIPE.
  for (const args of [['ls', 'base:1', '/'], ['images', '--json'], ['gc']]) {
    const {spawn} = await import('node:child_process');
    const {STRATA_BIN} = await import('./_cli.js');
    const child = spawn(STRATA_BIN, args, {env: {...process.env, STRATA_STORE: store}, stdio: ['ignore', 'pipe', 'pipe']});
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', d => { stderr += d; });
    const code = await new Promise<number | null>(r => child.on('close', c => r(c)));
    t.is(code, 0, `${args.join(' ')}: ${stderr}`);
    t.is(stderr, '', args.join(' '));
  }
});
