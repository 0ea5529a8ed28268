import {spawn} from 'node:child_process';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'ava';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

test('strata import, create, fs write, commit and gc killed at random moments leave a store that verifies, tags intact', async t => {
  const r = await new Promise<{code: number | null; out: string}>(resolve => {
    const child = spawn(process.execPath, [path.join(root, 'scripts', 'crash-test.js'), '--iterations', '4'], {stdio: ['ignore', 'pipe', 'pipe']});
    let out = '';
    child.stdout.on('data', d => { out += d; });
    child.stderr.on('data', d => { out += d; });
    child.on('close', code => resolve({code, out}));
  });
  t.is(r.code, 0, r.out);
  t.regex(r.out, /4 iterations, \d+ killed, 0 failures/);
});
