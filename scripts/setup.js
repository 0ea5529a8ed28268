#!/usr/bin/env node
// Installs everything strata needs on a machine that has only Node.js and npm:
// the pnpm workspace (pinned pnpm, frozen lockfile), the TypeScript build, and the
// Debian packages that interop tests and benchmarks use as peers (when root).
import {spawnSync} from 'node:child_process';
import {fileURLToPath} from 'node:url';
import * as path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const PNPM = 'pnpm@12.4.2';
// Peers used by tests and benchmarks: the Debian package, and a program it installs.
const DEBIAN_PEERS = [['umoci', 'umoci'], ['skopeo', 'skopeo'], ['b3sum', 'b3sum'], ['zstd', 'zstd'], ['ostree', 'ostree'], ['attr', 'setfattr'], ['docker-registry', 'docker-registry'], ['openssl', 'openssl'], ['erofs-utils', 'fsck.erofs'], ['xz-utils', 'xz'], ['bzip2', 'bzip2'], ['bsdutils', 'script'],
  ['runc', 'runc'], ['busybox-static', 'busybox'], ['util-linux', 'fincore'], ['strace', 'strace']];

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, {cwd: root, stdio: 'inherit', ...opts});
  if (r.status !== 0) {
    console.error(`setup: ${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}

const has = prog => spawnSync('sh', ['-c', `command -v ${prog}`], {stdio: 'ignore'}).status === 0;

const missing = DEBIAN_PEERS.filter(([, prog]) => !has(prog)).map(([pkg]) => pkg);
if (missing.length > 0) {
  if (process.getuid?.() === 0 && has('apt-get')) {
    console.error(`setup: installing Debian packages: ${missing.join(' ')}`);
    run('apt-get', ['update', '-qq']);
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'}});
  } else {
    console.error(`setup: WARNING: ${missing.join(', ')} missing and not root: tests that need them will fail and say so`);
  }
}

const pnpmArgs = ['-y', PNPM, 'install', '--frozen-lockfile'];
if (!process.env.CI && !process.stdout.isTTY) pnpmArgs.push('--reporter=append-only');
run('npx', pnpmArgs);
run('npx', ['tsc', '-b']);
run(process.execPath, [path.join(root, 'scripts', 'bundle.js')]);
