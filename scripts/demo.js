#!/usr/bin/env node
// A short guided tour of strata, run by `npm run demo` after setup: a temporary store, a
// small generated tree imported twice (the second time nothing new is stored), then a look
// around. Each step prints the command it runs and its output; any failure exits non-zero.
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
 * `as` keeps the step's stdout under that name for later steps.
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
];

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
  for (const step of STEPS) {
    if (step.say) console.log(`# ${step.say}`);
    if (step.do) {
      step.do(results);
      console.log();
      continue;
    }
    const args = typeof step.args === 'function' ? step.args(results) : step.args;
    console.log(`$ strata ${args.map(quote).join(' ')}`);
    const r = spawnSync(STRATA, args, {cwd: work, encoding: 'utf8', env: {...process.env, STRATA_STORE: store, NO_COLOR: '1'}});
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
