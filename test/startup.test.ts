import * as fs from 'node:fs';
import * as path from 'node:path';
import {PassThrough} from 'node:stream';
import test from 'ava';
import {buildCli} from '@strata/cli';
import {strata, tempDir, tempStore} from './_cli.js';

// The strata process starts in its own way (packages/cli/bin/strata.js: the bundle from its
// code caches; packages/cli/src/stdio.ts: stdout and stderr written before Node makes their
// streams). What it prints and how it exits must be what the library's command line gives.

/** The command line run in this process on PassThrough streams, no colours: the library's answer. */
async function inProcess(args: readonly string[]): Promise<{code: number; stdout: string; stderr: string}> {
  const stdout = new PassThrough(), stderr = new PassThrough();
  let out = '', err = '';
  stdout.on('data', d => { out += d; });
  stderr.on('data', d => { err += d; });
  const code = await buildCli({enableColors: false, argv: args}).run([...args], {stdin: new PassThrough(), stdout, stderr, env: {}, colorDepth: 1});
  return {code, stdout: out, stderr: err};
}

const CASES = [
  ['--help'], [], ['-h'], ['image', '--help'], ['fs'], ['ps', '--help'], ['image', 'tag', '--help'],
  ['--version'], ['bogus'], ['imagez'], ['ps', '--bogus'], ['image', 'tag', 'only-one'], ['--store'],
  // Options before the command: the bundle registers only the commands whose words argv has
  // (packages/cli/src/tableMain.ts), and every command where those parse to nothing.
  ['--store', 'nowhere', 'bogus'], ['--store', 'nowhere', 'imgaes'], ['--store', 'nowhere', '--help'], ['--store', 'nowhere', 'image'],
  ['--store', 'nowhere', 'ps', '--help'], ['--store', 'nowhere', 'ps', '--bogus'], ['--store', 'nowhere', 'image', 'tag', 'only-one'],
  ['--store', 'ps', 'ps', 'extra'], ['--version', 'ps'], ['-h', 'ps'], ['--store', 'nowhere', 'help', 'ps'],
];

for (const args of CASES) {
  test(`strata ${args.join(' ') || '(no arguments)'}: the process prints and exits as the library does`, async t => {
    const want = await inProcess(args);
    const got = await strata(args);
    t.deepEqual(got, want);
  });
}

test('every command\'s help (-h) prints as the library\'s does', async t => {
  // The bundle prints these from its command table (scripts/commandTable.js), made when strata is bundled.
  const paths = buildCli().definitions().map(d => d.path.split(' ').slice(1).filter(w => /^[a-z]+$/.test(w))).filter(p => p.length > 0);
  t.true(paths.length >= 40, `${paths.length} commands`);
  for (const p of paths) t.deepEqual(await strata([...p, '-h']), await inProcess([...p, '-h']), `strata ${p.join(' ')} -h`);
});

test('a command after its options (strata --store DIR ps) runs as the library runs it', async t => {
  const store = await tempStore(t);
  for (const args of [['--store', store, 'ps', '--json'], ['--store', store, 'images'], ['--store', store, 'image', 'ls', '--json'], ['--json', '--store', store, 'layers']]) {
    const want = await inProcess(args);
    t.is(want.code, 0, `${args.join(' ')}: ${want.stderr}`);
    t.deepEqual(await strata(args), want, `strata ${args.join(' ')}`);
  }
});

test('a command that fails prints its one line as the library does (stderr before Node makes the stream)', async t => {
  const store = await tempStore(t);
  const got = await strata(['image', 'inspect', 'nope:1'], {store});
  t.is(got.code, 1);
  t.is(got.stdout, '');
  t.regex(got.stderr, /^strata: .*nope:1.*\n$/);
});

const PRELOAD = `process.on('exit', () => {
  require('fs').writeFileSync(process.env.STRATA_TEST_BUILTINS, process.moduleLoadList.filter(m => m.startsWith('NativeModule ')).map(m => m.slice(13)).join('\\n'));
});
`;

test('help and a usage error make no stream: Node\'s stream modules are never loaded', async t => {
  const dir = await tempDir(t);
  const preload = path.join(dir, 'preload.cjs');
  fs.writeFileSync(preload, PRELOAD);
  for (const args of [['--help'], ['bogus']]) {
    const out = path.join(dir, 'builtins');
    const r = await strata(args, {env: {NODE_OPTIONS: `--require=${preload}`, STRATA_TEST_BUILTINS: out}});
    t.not(r.stdout + r.stderr, '');
    const builtins = fs.readFileSync(out, 'utf8').split('\n');
    t.true(builtins.includes('fs'), 'the list is read');
    t.deepEqual(builtins.filter(m => /^(stream|net|tty|internal\/fs\/sync_write_stream)$/.test(m)), [], `strata ${args.join(' ')}`);
  }
});
