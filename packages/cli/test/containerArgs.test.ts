import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test from 'ava';
import {containerFirst} from '../src/StrataCli.js';
import {splitViewArgument} from '../src/viewArgs.js';
import {importProgressBar} from '../src/progress.js';
import {PassThrough} from 'node:stream';
import {runCli, tempDir} from './_run.js';

test('fs takes the container before or after the operation', t => {
  t.deepEqual(containerFirst(['fs', 'web', 'ls', '/etc', '-l']), ['fs', 'ls', 'web', '/etc', '-l']);
  t.deepEqual(containerFirst(['fs', 'ls', 'web', '/etc']), ['fs', 'ls', 'web', '/etc']);
  t.deepEqual(containerFirst(['fs', '--help']), ['fs', '--help']);
  t.deepEqual(containerFirst(['fs', 'web', 'write', '--help']), ['fs', 'write', '--help']);
  t.deepEqual(containerFirst(['cp', 'web', 'ls']), ['cp', 'web', 'ls']);
});

test('cp arguments split into a view and a path, or stay host paths', t => {
  t.deepEqual(splitViewArgument('web:/etc/hosts'), {ref: 'web', path: '/etc/hosts'});
  t.deepEqual(splitViewArgument('web:etc'), {ref: 'web', path: 'etc'});
  t.deepEqual(splitViewArgument('web:'), {ref: 'web', path: '/'});
  t.deepEqual(splitViewArgument('app:1:/bin'), {ref: 'app:1', path: '/bin'});
  t.is(splitViewArgument('./a:b'), undefined);
  t.is(splitViewArgument('/tmp/a:b'), undefined);
  t.is(splitViewArgument('plain'), undefined);
});

test('the progress bar names its work', async t => {
  const err = Object.assign(new PassThrough(), {isTTY: true, columns: 100});
  let text = '';
  err.on('data', (d: Buffer) => { text += d.toString('utf8'); });
  const bar = await importProgressBar(err, Object.assign(new PassThrough(), {isTTY: true}), 0, 'checking out');
  bar.onProgress({files: 2, bytes: 10});
  bar.stop();
  t.regex(text, /checking out 2 files/);
});

/** A user mistake found before the store opens: exit 2, one line, no store made. */
const usageError = test.macro(async (t, args: string[], message: RegExp) => {
  const store = path.join(await tempDir(t), 'no-store');
  const r = await runCli([...args, '--store', store]);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /^strata: [^\n]+\n$/);
  t.regex(r.stderr, message);
  t.false(await fs.stat(store).then(() => true, () => false));
});

test('fs chmod with a symbolic mode', usageError, ['fs', 'web', 'chmod', 'a+x', '/x'], /not an octal number/);
test('cp between two host paths', usageError, ['cp', './a', '/b'], /exactly one CONTAINER:PATH/);
test('cp between two views', usageError, ['cp', 'web:/a', 'db:/b'], /exactly one CONTAINER:PATH/);
test('commit with a bad tag', usageError, ['commit', 'web', '--tag', 'Web:1'], /not a valid name:tag/);
