import * as path from 'node:path';
import {PassThrough} from 'node:stream';
import test from 'ava';
import {Builtins, Command} from 'clipanion';
import {StoreError} from '@strata/store';
import {UnionError} from '@strata/union';
import {BaseCommand} from '../src/commands/BaseCommand.js';
import {EXIT, StrataCli} from '../src/StrataCli.js';

const STORE = path.resolve('/var/lib/strata-test-store');

/** A command that fails with the error it is given: how BaseCommand classifies what run() throws. */
function failingCli(error: unknown): StrataCli {
  class FailCommand extends BaseCommand {
    static override paths = [['fail']];
    static override usage = Command.Usage({description: 'fails', examples: [['Fail', '$0 fail']]});
    async run(): Promise<number> {
      throw error;
    }
  }
  const cli = new StrataCli({binaryName: 'strata', enableColors: false});
  cli.register(Builtins.HelpCommand);
  cli.register(FailCommand);
  return cli;
}

async function fail(error: unknown): Promise<{code: number; stdout: string; stderr: string}> {
  const stdout = new PassThrough(), stderr = new PassThrough();
  let out = '', err = '';
  stdout.on('data', d => { out += d; });
  stderr.on('data', d => { err += d; });
  const code = await failingCli(error).run(['fail', '--store', STORE], {stdin: new PassThrough(), stdout, stderr, env: {}, colorDepth: 1});
  return {code, stdout: out, stderr: err};
}

/** Node's fs error as fs.promises raises it. */
function errno(code: string, syscall: string, p: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${syscall} '${p}'`), {code, syscall, path: p, errno: -1});
}

const shown = test.macro(async (t, error: unknown, exit: number) => {
  const r = await fail(error);
  t.deepEqual(r, {code: exit, stdout: '', stderr: `strata: ${(error as Error).message}\n`});
});

test('a StoreError is one line with its code\'s exit status', shown, new StoreError('OBJECT_MISSING', 'blob b3:00 is missing'), EXIT.problems);
test('STORE_LOCKED exits 75', shown, new StoreError('STORE_LOCKED', 'the store is busy'), EXIT.busy);
test('a malformed argument (BAD_REFERENCE) exits 2', shown, new StoreError('BAD_REFERENCE', '"a:b:c" is not NAME:TAG'), EXIT.usage);
test('a UnionError errno is one line, exit 1', shown, new UnionError('ENOENT', "ENOENT: no such file or directory, open '/etc/x'", {syscall: 'open', path: '/etc/x'}), EXIT.failure);
test('a UnionError domain code is one line, exit 1', shown, new UnionError('UNKNOWN_CONTAINER', 'there is no container "web"'), EXIT.failure);
test('an fs error about a path outside the store is the user\'s: one line', shown, errno('ENOENT', 'open', '/home/someone/missing.tar'), EXIT.failure);
test('a copy out of the store that fails at its target is the user\'s', shown, Object.assign(errno('EACCES', 'copyfile', path.join(STORE, 'objects', 'b3', 'aa')), {dest: '/home/someone/out/f'}), EXIT.failure);
test('a full disk is the user\'s, even met inside the store', shown, errno('ENOSPC', 'write', path.join(STORE, 'tmp', 'blob-1')), EXIT.failure);

const internal = test.macro(async (t, error: Error) => {
  const r = await fail(error);
  t.is(r.code, EXIT.failure);
  t.true(r.stderr.startsWith('strata: internal error (a bug in strata'), 'not shown as a user mistake');
  t.regex(r.stderr, /at .*errors\.test/, 'the stack is kept, on stderr');
  t.is(r.stdout, '', 'stdout stays clean for a script reading --json');
});

test('an fs error inside the store is strata\'s bug: its stack is kept', internal, errno('EPERM', 'open', path.join(STORE, 'objects', 'b3', 'aa')));
test('an error that only looks coded (code ENOENT, no syscall) is a bug', internal, Object.assign(new Error('ENOENT: not really'), {code: 'ENOENT'}));
test('a TypeError is a bug', internal, new TypeError('assertion failed: x'));
