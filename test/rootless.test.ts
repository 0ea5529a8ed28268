import {spawn, spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import {STRATA_BIN, ignoreEpipe, tempDir} from './_cli.js';

const UID = 1000;

/** Runs the real strata binary as an ordinary user (setpriv, util-linux). */
function asUser(args: readonly string[], store: string, input = ''): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve, reject) => {
    const child = spawn('setpriv', [`--reuid=${UID}`, `--regid=${UID}`, '--clear-groups', STRATA_BIN, ...args],
      {env: {...process.env, STRATA_STORE: store, HOME: path.dirname(store), NO_COLOR: '1'}, cwd: path.dirname(store)});
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', d => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', d => { stderr += d; });
    child.on('error', reject);
    child.on('close', code => resolve({code: code ?? -1, stdout, stderr}));
    child.stdin.on('error', ignoreEpipe(reject));
    child.stdin.end(input);
  });
}

test('a store made without root keeps its writable layers in the rootless form; mount says in one line what is missing', async t => {
  if (process.getuid?.() !== 0) throw new Error('this test switches to an ordinary user, so it runs as root (CI does)');
  const dir = await tempDir(t);
  fs.chmodSync(dir, 0o755);
  const home = path.join(dir, 'user');
  fs.mkdirSync(path.join(home, 'src', 'd'), {recursive: true});
  fs.mkdirSync(path.join(home, 'src', 'etc'));
  fs.writeFileSync(path.join(home, 'src', 'etc', 'motd'), 'hello\n');
  fs.writeFileSync(path.join(home, 'src', 'd', 'x'), 'x\n');
  spawnSync('chown', ['-R', `${UID}:${UID}`, home]);
  const store = path.join(home, 'store');
  for (const args of [['init'], ['import', path.join(home, 'src'), '--tag', 'base:1'], ['create', 'base:1', '--name', 'web'],
    ['fs', 'web', 'rm', '/etc/motd'], ['fs', 'web', 'rm', '-r', '/d'], ['fs', 'web', 'mkdir', '/d']]) {
    const r = await asUser(args, store);
    t.is(r.code, 0, `strata ${args.join(' ')}: ${r.stderr}`);
  }
  t.deepEqual(JSON.parse(fs.readFileSync(path.join(store, 'strata.json'), 'utf8')), {format: 3, userxattr: true});
  const upper = path.join(store, 'containers', fs.readdirSync(path.join(store, 'containers'))[0]!, 'upper');
  const motd = fs.lstatSync(path.join(upper, 'etc', 'motd'));
  t.true(motd.isCharacterDevice() && motd.rdev === 0, 'an unprivileged whiteout is a 0/0 device too');
  const opaque = spawnSync('getfattr', ['--only-values', '-n', 'user.overlay.opaque', path.join(upper, 'd')], {encoding: 'utf8'});
  t.is(opaque.stdout, 'y');
  t.is((await asUser(['diff', 'web'], store)).stdout, 'C /d\nD /d/x\nC /etc\nD /etc/motd\n');
  t.is((await asUser(['commit', 'web', '--tag', 'web:1'], store)).code, 0);

  const mount = await asUser(['mount', 'web'], store);
  t.is(mount.code, 1);
  t.is(mount.stderr.trim().split('\n').length, 1, mount.stderr);
  t.regex(mount.stderr, /cannot mount containers here: not root .*; everything else \(import, create, fs, cp, diff, commit, checkout, export, gc\) still works/);
});
