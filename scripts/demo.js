#!/usr/bin/env node
// A short guided tour of strata, run by `npm run demo` after setup: a temporary store, a
// small generated tree imported twice (the second time nothing new is stored), a look
// around, then containers: an application layer stacked on the base, two containers
// changed and diffed, one committed and checked out, a command run in a container (a
// kernel mount, runc), its changes diffed and committed, then space accounting and
// garbage collection. Each step prints the command it runs and its output; any failure exits non-zero.
// To extend the tour, add steps to STEPS.
import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const STRATA = path.join(root, 'node_modules', '.bin', 'strata');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-demo-'));
const store = path.join(work, 'store');
const tree = path.join(work, 'rootfs');
const CHANGED = 'NAME=strata-demo\nVERSION=2\n';

/** A small tree: 200 text files in 10 directories, an empty directory, a symlink, and 2 MiB of data. */
function generateTree(dir) {
  for (let d = 0; d < 10; d++) {
    fs.mkdirSync(path.join(dir, 'usr', 'share', `pkg${d}`), {recursive: true});
    for (let f = 0; f < 20; f++) fs.writeFileSync(path.join(dir, 'usr', 'share', `pkg${d}`, `file${f}.txt`), `package ${d}, file ${f}\n`.repeat(f + 1));
  }
  fs.mkdirSync(path.join(dir, 'etc'), {recursive: true});
  fs.mkdirSync(path.join(dir, 'tmp'));
  fs.writeFileSync(path.join(dir, 'etc', 'os-release'), 'NAME=strata-demo\nVERSION=1\n');
  fs.symlinkSync('../usr/share/pkg0/file0.txt', path.join(dir, 'etc', 'motd'));
  const data = Buffer.alloc(2 * 1024 * 1024);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
  fs.mkdirSync(path.join(dir, 'var', 'lib'), {recursive: true});
  fs.writeFileSync(path.join(dir, 'var', 'lib', 'data.bin'), data);
}

/**
 * The tour. A step runs `strata ...args` (args may be a function of the results so far),
 * or `do` (a plain function, for changes outside strata, shown as `say` only).
 * `check(stdout, results)` throws when the output is not what the tour promises;
 * `as` keeps the step's stdout under that name for later steps; `input` is fed to stdin.
 */
const STEPS = [
  {say: 'Create an empty store', args: ['init']},
  {say: 'Import the generated tree as a layer, and tag an image of it', args: ['import', 'rootfs', '--tag', 'demo:1'],
    check: out => expect(out, /stored [1-9][\d.]* [KM]iB new/, 'the first import stores the tree')},
  {say: 'Import the same tree again: the same layer, and nothing new is stored', args: ['import', 'rootfs', '--json'], as: 'again',
    check: out => {
      const r = JSON.parse(out);
      if (r.newBytes !== 0 || r.newObjects !== 0) throw new Error(`the second import stored ${r.newBytes} bytes in ${r.newObjects} objects`);
    }},
  {say: 'Change one small file', do: () => fs.writeFileSync(path.join(tree, 'etc', 'os-release'), CHANGED)},
  {say: 'Import the changed tree: only the changed file and the trees above it are new', args: ['import', 'rootfs', '--tag', 'demo:2'],
    check: out => expect(out, new RegExp(`stored ${CHANGED.length} B new`), 'only the changed file is stored')},
  {say: 'The images', args: ['images']},
  {say: 'The layers: two, sharing every unchanged file', args: ['layers']},
  {say: 'One layer up close', args: r => ['layer', 'inspect', JSON.parse(r.again).layer.slice(3, 15)]},
  {say: 'An image up close', args: ['image', 'inspect', 'demo:2']},
  {say: 'Read through an image without extracting it', args: ['ls', 'demo:2', '/etc', '-l']},
  {say: '', args: ['cat', 'demo:2', '/etc/os-release'], check: out => expect(out, /VERSION=2/, 'demo:2 has the new file')},
  {say: '', args: ['cat', 'demo:1', '/etc/os-release'], check: out => expect(out, /VERSION=1/, 'demo:1 still has the old one')},
  {say: 'Make an application layer (a config file and a script) outside strata', do: () => {
    fs.mkdirSync(path.join(work, 'app', 'etc'), {recursive: true});
    fs.mkdirSync(path.join(work, 'app', 'usr', 'local', 'bin'), {recursive: true});
    fs.writeFileSync(path.join(work, 'app', 'etc', 'app.conf'), 'port=8080\n');
    fs.writeFileSync(path.join(work, 'app', 'usr', 'local', 'bin', 'app'), '#!/bin/sh\necho hello\n', {mode: 0o755});
  }},
  {say: 'Stack it on demo:2: the image app:1 is demo:2\'s layer plus this one', args: ['import', 'app', '--on', 'demo:2', '--tag', 'app:1']},
  {say: 'Create two containers on app:1: each is an empty writable layer, nothing is copied', args: ['create', 'app:1', '--name', 'web']},
  {say: '', args: ['create', 'app:1', '--name', 'db']},
  {say: '', args: ['ps']},
  {say: 'Change files in web: a lower file is copied up, a deleted one leaves a whiteout', args: ['fs', 'web', 'write', '/etc/app.conf'], input: 'port=80\n'},
  {say: '', args: ['fs', 'web', 'rm', '/etc/motd']},
  {say: 'And in db: a new directory, and a file copied in from the host', args: ['fs', 'db', 'mkdir', '-p', '/var/lib/db']},
  {say: '', args: ['cp', 'app/etc/app.conf', 'db:/var/lib/db/app.conf.orig']},
  {say: 'What web changed in its image (parents of a change show as C)', args: ['diff', 'web'],
    check: out => expect(out, /^C \/etc\nC \/etc\/app.conf\nD \/etc\/motd\n$/, 'web changed app.conf and deleted motd')},
  {say: 'What db changed', args: ['diff', 'db'], check: out => expect(out, /A \/var\/lib\/db\/app.conf.orig/, 'db added a file')},
  {say: 'One container against the other', args: ['diff', 'web', 'db']},
  {say: 'The image itself is untouched', args: ['fs', 'web', 'cat', '/etc/app.conf'], check: out => expect(out, /port=80\n/, 'web sees its change')},
  {say: '', args: ['cat', 'app:1', '/etc/app.conf'], check: out => expect(out, /port=8080/, 'app:1 still has the old file')},
  {say: 'Commit web: its changes become a layer, and web:1 = app:1 + that layer', args: ['commit', 'web', '--tag', 'web:1', '--message', 'listen on port 80']},
  {say: 'web:1 shows exactly what web showed', args: ['diff', 'web', 'web:1'], check: out => expect(out, /^$/, 'no difference')},
  {say: 'Check web:1 out into a plain directory', args: ['checkout', 'web:1', 'web-root'],
    check: () => expect(fs.readFileSync(path.join(work, 'web-root', 'etc', 'app.conf'), 'utf8'), /^port=80\n$/, 'the checkout has the committed file')},
  {say: 'Three layers, one per step of the story, sharing every unchanged file', args: ['image', 'inspect', 'web:1']},
  {say: 'Make a runnable image: Debian\'s static busybox as /bin/sh and friends, stacked on demo:2', needs: 'run', do: () => {
    const bin = path.join(work, 'box', 'bin');
    fs.mkdirSync(bin, {recursive: true});
    fs.copyFileSync(fs.realpathSync(which('busybox')), path.join(bin, 'busybox'));
    fs.chmodSync(path.join(bin, 'busybox'), 0o755);
    for (const applet of ['sh', 'echo', 'rm', 'chmod', 'cat']) fs.symlinkSync('busybox', path.join(bin, applet));
  }},
  {say: '', needs: 'run', args: ['import', 'box', '--on', 'demo:2', '--tag', 'box:1']},
  {say: 'Run a command in a new container of it: a kernel overlayfs mount of the store, run by runc', needs: 'run',
    args: ['run', '--name', 'job', 'box:1', '--', 'sh', '-c', 'echo built > /etc/built; rm /etc/motd; chmod 600 /etc/os-release; echo done'],
    check: out => expect(out, /^done\n$/, 'the process ran')},
  {say: 'What the process changed', needs: 'run', args: ['diff', 'job'],
    check: out => expect(out, /^C \/etc\nA \/etc\/built\nD \/etc\/motd\nC \/etc\/os-release\n$/, 'diff lists exactly what the process did')},
  {say: 'Commit it: job:1 is box:1 plus the process\'s changes', needs: 'run', args: ['commit', 'job', '--tag', 'job:1']},
  {say: '', needs: 'run', args: ['cat', 'job:1', '/etc/built'], check: out => expect(out, /^built\n$/, 'job:1 has the new file')},
  {say: 'Space: what the images would take unshared, what the store holds, and per image and container', args: ['df', '-v']},
  {say: 'Remove db and the first image; then collect garbage: what no tag, container or pin reaches goes', args: ['rm', 'db']},
  {say: '', args: ['image', 'rm', 'demo:1']},
  {say: 'A dry run first: what would be removed', args: ['gc', '--dry-run']},
  {say: '', args: ['gc'], check: out => expect(out, /^removed [1-9]/, 'gc removes what demo:1 left')},
  {say: 'Collecting again removes nothing', args: ['gc'], check: out => expect(out, /^removed 0 objects/, 'a second gc removes nothing')},
  {say: 'Everything that is left re-hashes to its name and every reference holds', args: ['verify']},
  {say: 'web:1 is intact', args: ['cat', 'web:1', '/etc/app.conf'], check: out => expect(out, /^port=80\n$/, 'web:1 still reads')},
];

function which(program) {
  const r = spawnSync('sh', ['-c', `command -v ${program}`], {encoding: 'utf8'});
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function expect(out, re, what) {
  if (!re.test(out)) throw new Error(`expected ${what} (${re}), got:\n${out}`);
}

function quote(arg) {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

function main() {
  if (!fs.existsSync(STRATA)) throw new Error(`${STRATA} is missing: run "npm run setup" first`);
  generateTree(tree);
  console.log(`strata demo: a temporary store and a generated tree (rootfs/)\n$ cd ${work}\n$ export STRATA_STORE=${store}\n`);
  const results = {};
  // `strata run` needs root, runc and a static busybox (CI has them); elsewhere those steps are skipped, saying why.
  const missing = [process.getuid?.() === 0 ? '' : 'root', ...['runc', 'busybox'].filter(p => !which(p))].filter(Boolean);
  let skipped = false;
  for (const step of STEPS) {
    if (step.needs === 'run' && missing.length > 0) {
      if (!skipped) console.log(`# (skipping strata run: it needs ${missing.join(', ')})\n`);
      skipped = true;
      continue;
    }
    if (step.say) console.log(`# ${step.say}`);
    if (step.do) {
      step.do(results);
      console.log();
      continue;
    }
    const args = typeof step.args === 'function' ? step.args(results) : step.args;
    console.log(`$ ${step.input !== undefined ? `printf ${quote(step.input.replace(/\n/g, '\\n'))} | ` : ''}strata ${args.map(quote).join(' ')}`);
    const r = spawnSync(STRATA, args, {cwd: work, encoding: 'utf8', input: step.input ?? '', env: {...process.env, STRATA_STORE: store, NO_COLOR: '1'}});
    process.stdout.write(r.stdout ?? '');
    process.stderr.write(r.stderr ?? '');
    if (r.status !== 0) throw new Error(`strata ${args.join(' ')} exited ${r.status ?? r.signal}`);
    step.check?.(r.stdout, results);
    if (step.as) results[step.as] = r.stdout;
    console.log();
  }
  console.log('demo: every step passed');
}

try {
  main();
} catch (err) {
  console.error(`demo: FAILED: ${err.message}`);
  process.exitCode = 1;
} finally {
  fs.rmSync(work, {recursive: true, force: true});
}
