#!/usr/bin/env node
// Runs the whole ava suite (compiled tests) and ends with the plain line CI reads:
// "N passed, N failed, N skipped". Extra arguments go to ava (e.g. a file glob).
import {spawn, spawnSync} from 'node:child_process';
import {createInterface} from 'node:readline';
import {fileURLToPath} from 'node:url';
import * as path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
// The end-to-end tests run the CLI as users get it: bundled (scripts/bundle.js) from the fresh build.
spawnSync(process.execPath, [path.join(root, 'scripts', 'bundle.js')], {cwd: root, stdio: 'inherit'});
const ava = path.join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
const child = spawn(process.execPath, [ava, '--tap', ...process.argv.slice(2)], {cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: {...process.env, NO_COLOR: '1'}});

let passed = 0, failed = 0, skipped = 0;
const lines = createInterface({input: child.stdout});
lines.on('line', line => {
  process.stdout.write(`${line}\n`);
  if (/^not ok /.test(line)) failed++;
  else if (/^ok .*# SKIP/i.test(line) || /^ok .*# TODO/i.test(line)) skipped++;
  else if (/^ok /.test(line)) passed++;
});
child.on('close', code => {
  // A test file that crashes reports no "not ok" line: count it as a failure.
  if (code !== 0 && failed === 0) failed = 1;
  console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
  process.exitCode = code ?? 1;
});
