import {spawnSync} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import {STRATA_BIN, strata, tempDir, tempStore} from './_cli.js';

// The bundled CLI is compiled from V8's code caches beside it (scripts/bundle.js,
// packages/cli/bin/strata.js). A cache is only ever an aid: a damaged one, or none that
// this user may write, must leave every command as it is. Serial: the cache files are
// the bundle's own, shared by every strata process of this checkout.
const BUNDLE = path.join(path.dirname(fs.realpathSync(STRATA_BIN)), '..', 'dist', 'bundle');
const BIN_DIR = path.dirname(fs.realpathSync(STRATA_BIN));

function bundleFiles(): string[] {
  if (!fs.existsSync(path.join(BUNDLE, 'strata.cjs'))) throw new Error(`no bundle at ${BUNDLE}: run node scripts/bundle.js (scripts/test.js does)`);
  return fs.readdirSync(BUNDLE);
}

/** A bundle file's build id (its first line, scripts/bundle.js). */
function buildId(file: string): string {
  const id = /^\/\/ strata build ([0-9a-f]{16})\n/.exec(fs.readFileSync(file, 'utf8'))?.[1];
  if (!id) throw new Error(`${file} does not start with its build id`);
  return id;
}

/** The code cache of a bundle file kept for one command (`help` for group help), as packages/cli/bin/strata.js names it. */
function cacheOf(file: string, key: string): string {
  return path.join(BUNDLE, `${file}.${buildId(path.join(BUNDLE, file))}.${key}.cache`);
}

/** The file of one command alone (`ps`, `image-inspect`) that the command line names (scripts/bundle.js). */
function commandFile(key: string): string {
  const file = new RegExp(`__strataPackage\\("(cmd-${key}-[0-9a-f]+\\.cjs)", "commands"\\)`).exec(fs.readFileSync(path.join(BUNDLE, 'strata.cjs'), 'utf8'))?.[1];
  if (!file) throw new Error(`strata.cjs in ${BUNDLE} names no file of its own for ${key}`);
  return file;
}

const FRONT_CACHE = () => cacheOf('strata.cjs', 'help');

test.serial('a damaged code cache is passed over and written anew; the command works as before', async t => {
  bundleFiles();
  const want = await strata(['--help']);
  t.is(want.code, 0, want.stderr);
  const garbage = randomBytes(4096);
  fs.writeFileSync(FRONT_CACHE(), garbage);
  const r = await strata(['--help']);
  t.deepEqual([r.code, r.stdout, r.stderr], [0, want.stdout, '']);
  t.false(fs.readFileSync(FRONT_CACHE()).equals(garbage));
  t.true(fs.statSync(FRONT_CACHE()).size > 10_000);
});

test.serial('a command that loads the packages works with their cache damaged, and writes it anew', async t => {
  bundleFiles();
  const store = await tempStore(t);
  const garbage = randomBytes(4096);
  const cache = cacheOf(commandFile('ps'), 'ps');
  fs.writeFileSync(cache, garbage);
  const r = await strata(['ps', '--json'], {store});
  t.deepEqual([r.code, JSON.parse(r.stdout), r.stderr], [0, [], '']);
  t.false(fs.readFileSync(cache).equals(garbage));
});

test.serial('a user who cannot write the bundle directory runs strata without a cache, leaving nothing behind', async t => {
  bundleFiles();
  fs.rmSync(FRONT_CACHE(), {force: true});
  const r = await strata(['--help'], {user: 65534});
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^strata - /);
  // Nothing of that user's: other strata processes of the suite, running beside this test
  // on a fresh build, may be writing their own caches (root's temporary files) meanwhile.
  t.deepEqual(bundleFiles().filter(f => fs.lstatSync(path.join(BUNDLE, f), {throwIfNoEntry: false})?.uid === 65534), []);
  // The next run of a user who may write puts it back.
  t.is((await strata(['--help'])).code, 0);
  t.true(fs.existsSync(FRONT_CACHE()));
});

test('each command leaves code caches of its own on its first run, and takes them on the next', async t => {
  // In a copy of the bundle with caches of its own: other tests' strata processes, running
  // beside this one, write the checkout's caches.
  const dir = await tempDir(t);
  const bin = copyOfCli(dir, {packages: true});
  const bundle = path.join(dir, 'packages', 'cli', 'dist', 'bundle');
  const store = await tempStore(t);
  const caches = ['strata.cjs', commandFile('layers')].map(f => path.join(bundle, `${f}.${buildId(path.join(bundle, f))}.layers.cache`));
  const first = runBin(bin, ['layers', '--json', '--store', store]);
  t.deepEqual([first.code, JSON.parse(first.stdout), first.stderr], [0, [], '']);
  const written = caches.map(c => fs.statSync(c, {throwIfNoEntry: false})?.mtimeMs);
  t.true(written.every(m => m !== undefined), 'both files of the bundle have a cache for layers');
  const again = runBin(bin, ['layers', '--json', '--store', store]);
  t.deepEqual([again.code, again.stdout], [0, first.stdout]);
  // Taken as it was: V8 accepted it, so nothing was written again.
  t.deepEqual(caches.map(c => fs.statSync(c).mtimeMs), written);
  // A command's own help is no run of it, and names no cache of its own.
  const help = runBin(bin, ['layers', '--help']);
  t.is(help.code, 0);
  t.deepEqual(caches.map(c => fs.statSync(c).mtimeMs), written);
  t.false(fs.readdirSync(bundle).some(f => f.includes('.tmp-')), 'no temporary file is left');
});

test('a command reads its own file of the bundle; what can mean several commands reads every command\'s', async t => {
  // In a copy of the bundle, whose caches show which files each process compiled: a file's
  // cache for a key is written by the first process that runs that key from it.
  const dir = await tempDir(t);
  const bin = copyOfCli(dir, {packages: true});
  const bundle = path.join(dir, 'packages', 'cli', 'dist', 'bundle');
  const store = await tempStore(t);
  const cached = () => fs.readdirSync(bundle).filter(f => f.endsWith('.cache')).map(f => f.replace(/^((?:lib|cmd-[a-z-]+?)-[0-9a-f]{16}|strata)\.cjs\.[0-9a-f]{16}\./, '$1 ').replace(/-[0-9a-f]{16} /, ' ')).sort();
  const before = cached();
  const run = (args: string[]) => {
    const r = runBin(bin, args);
    t.true(r.code !== null && r.code <= 2, `strata ${args.join(' ')}: ${r.stderr}`);
    const now = cached();
    const made = now.filter(c => !before.includes(c));
    before.push(...made);
    return made.filter(c => !c.startsWith('strata '));
  };
  t.deepEqual(run(['ps', '--json', '--store', store]), ['cmd-ps ps.cache']);
  t.deepEqual(run(['--store', store, 'images', '--json']), ['cmd-images images.cache']);
  // One command's usage error is its own file's, under the key of help. A command's own
  // file has no default cache: it runs under its command's key.
  t.deepEqual(run(['layers', '--bogus']), ['cmd-layers help.cache']);
  // Options first with words of no command, and clipanion's own errors: every command's file.
  t.deepEqual(run(['--store', store, 'nothing']), ['lib cache', 'lib help.cache']);
  t.deepEqual(run(['--store', store, 'df', '--json']), ['cmd-df df.cache']);
});

/**
 * A copy of the command line (the bin and strata.cjs) in a directory of its own, as the
 * bin finds it: `--help` needs nothing else. With `packages`, the whole bundle, beside links
 * to the checkout's node_modules and packages (what the bundle requires by relative paths),
 * at the checkout's layout (DIR/packages/cli/...). Returns the copy's bin.
 */
function copyOfCli(dir: string, options: {packages?: boolean} = {}): string {
  const cli = options.packages ? path.join(dir, 'packages', 'cli') : path.join(dir, 'cli');
  fs.mkdirSync(path.join(cli, 'bin'), {recursive: true});
  fs.mkdirSync(path.join(cli, 'dist', 'bundle'), {recursive: true});
  for (const f of ['strata.js', 'package.json']) fs.copyFileSync(path.join(BIN_DIR, f), path.join(cli, 'bin', f));
  const files = options.packages ? fs.readdirSync(BUNDLE).filter(f => /\.[cm]js$/.test(f)) : ['strata.cjs'];
  for (const f of files) fs.copyFileSync(path.join(BUNDLE, f), path.join(cli, 'dist', 'bundle', f));
  if (options.packages) {
    const root = path.join(BIN_DIR, '..', '..', '..');
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
    for (const p of fs.readdirSync(path.join(root, 'packages')).filter(p => p !== 'cli')) fs.symlinkSync(path.join(root, 'packages', p), path.join(dir, 'packages', p));
    fs.symlinkSync(path.join(root, 'packages', 'cli', 'node_modules'), path.join(cli, 'node_modules'));
  }
  return path.join(cli, 'bin', 'strata.js');
}

function runBin(bin: string, args: string[]): {code: number | null; stdout: string; stderr: string} {
  const r = spawnSync(process.execPath, [bin, ...args], {encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}});
  return {code: r.status, stdout: r.stdout, stderr: r.stderr};
}

test('a code cache of another build is never taken, though V8 would take one of a source as long', async t => {
  const dir = await tempDir(t);
  const bin = copyOfCli(dir);
  const front = path.join(dir, 'cli', 'dist', 'bundle', 'strata.cjs');
  const a = runBin(bin, ['--help']);
  t.is(a.code, 0, a.stderr);
  t.regex(a.stdout, /^strata - /);
  t.true(fs.readdirSync(path.dirname(front)).some(f => f.endsWith('.help.cache')), 'build A left its cache');
  // Build B: as long as A, its group help (the command table's text) says "strata = ", its own id (as bundle.js writes it).
  const source = fs.readFileSync(front, 'utf8');
  t.true(source.includes('`strata - 0.1.0\n'), 'the group help\'s first line is where the test expects it');
  const other = source.replaceAll('`strata - 0.1.0\n', '`strata = 0.1.0\n').replace(/^\/\/ strata build ([0-9a-f]{16})/, (_, id: string) => `// strata build ${[...id].reverse().join('')}`);
  t.is(other.length, source.length);
  fs.writeFileSync(front, other);
  const b = runBin(bin, ['--help']);
  t.is(b.code, 0, b.stderr);
  t.regex(b.stdout, /^strata = /);
});

test('help, a command\'s help and the version print from strata.cjs alone, as the whole bundle prints them', async t => {
  // The command table's answers (packages/cli/src/tableMain.ts): neither clipanion nor any command loads.
  const dir = await tempDir(t);
  const bin = copyOfCli(dir);
  for (const args of [['--help'], [], ['image', '--help'], ['fs'], ['ps', '--help'], ['image', 'tag', '-h'], ['fs', 'web', 'ls', '--help'], ['--version'], ['-v']]) {
    const want = await strata(args);
    t.deepEqual(runBin(bin, args), {code: want.code, stdout: want.stdout, stderr: want.stderr}, `strata ${args.join(' ')}`);
  }
});

test('a bundle older than a package\'s build never runs: the compiled modules do', async t => {
  const dir = await tempDir(t);
  const bin = copyOfCli(dir);
  const dist = path.join(dir, 'cli', 'dist');
  fs.mkdirSync(path.join(dist, 'src'));
  fs.writeFileSync(path.join(dist, 'src', 'bin.js'), "process.stdout.write('the compiled modules\\n');\n");
  const built = fs.statSync(path.join(dist, 'bundle', 'strata.cjs')).mtime;
  fs.writeFileSync(path.join(dist, 'tsconfig.tsbuildinfo'), '{}');
  fs.utimesSync(path.join(dist, 'tsconfig.tsbuildinfo'), built, new Date(built.getTime() - 1000));
  t.regex(runBin(bin, ['--help']).stdout, /^strata - /, 'a build older than the bundle: the bundle');
  fs.utimesSync(path.join(dist, 'tsconfig.tsbuildinfo'), built, new Date(built.getTime() + 1000));
  t.is(runBin(bin, ['--help']).stdout, 'the compiled modules\n');
  // A package's build (store, union, registry) counts as the command line's does.
  fs.utimesSync(path.join(dist, 'tsconfig.tsbuildinfo'), built, new Date(built.getTime() - 1000));
  for (const p of ['store', 'union', 'registry']) fs.mkdirSync(path.join(dir, p, 'dist'), {recursive: true});
  fs.writeFileSync(path.join(dir, 'union', 'dist', 'tsconfig.tsbuildinfo'), '{}');
  t.is(runBin(bin, ['--help']).stdout, 'the compiled modules\n');
});

test('a bundled import\'s hashing threads run the bundle\'s own file, and store what the compiled modules store', async t => {
  // The threads start at 256 files (FilePool's THREADS_MIN_FILES): 300 in three directories.
  const dir = await tempDir(t);
  const bin = copyOfCli(dir, {packages: true});
  const bundle = path.join(dir, 'packages', 'cli', 'dist', 'bundle');
  const src = path.join(dir, 'src');
  for (let i = 0; i < 300; i++) {
    fs.mkdirSync(path.join(src, `d${i % 3}`), {recursive: true});
    fs.writeFileSync(path.join(src, `d${i % 3}`, `f${i}`), `file ${i}\n`.repeat(1 + (i % 40)));
  }
  const layerOf = (r: {code: number | null; stdout: string; stderr: string}) => {
    t.is(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as {layer: string}).layer;
  };
  // The compiled modules (packages/cli/dist/src/bin.js: no bundle) start the packages' own hashWorker.js.
  const compiled = path.join(BIN_DIR, '..', 'dist', 'src', 'bin.js');
  const unbundled = spawnSync(process.execPath, [compiled, 'import', src, '--json', '--store', await tempStore(t)], {encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}});
  const want = layerOf({code: unbundled.status, stdout: unbundled.stdout, stderr: unbundled.stderr});
  t.is(layerOf(runBin(bin, ['import', src, '--json', '--store', await tempStore(t)])), want);
  // What the threads run is the bundle's file: one that fails to load fails the import.
  const workers = fs.readdirSync(bundle).filter(f => /^worker-hashWorker-[0-9a-f]{16}\.mjs$/.test(f));
  t.is(workers.length, 1, `one hashing worker file in ${bundle}`);
  fs.writeFileSync(path.join(bundle, workers[0]!), "throw new Error('the bundle\\'s hashing worker file ran');\n");
  const broken = runBin(bin, ['import', src, '--json', '--store', await tempStore(t)]);
  t.not(broken.code, 0);
  t.regex(broken.stderr, /the bundle's hashing worker file ran/);
});
