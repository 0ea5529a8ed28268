#!/usr/bin/env node
// `npm run bench -- NAME [args]` runs scripts/bench/NAME.js (after `tsc -b`, which the
// benchmarks' imports of packages/*/dist need). Without NAME, lists the benchmarks.
// NODE_EXTRA_CA_CERTS is left out of every benchmark's environment (so of every process it
// starts): where it is set, each Node process reads the certificates as it starts (~80 ms of
// CPU here: `node -e 0` 0.02 s of CPU without, 0.10 s with), a cost of the machine, not of
// strata, that would also hide strata's own start in every ratio to `node -e 0`.
// `--keep-env` among the arguments (after the benchmark's own) keeps it.
import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const names = fs.readdirSync(here).filter(f => f.endsWith('.js') && f !== 'run.js' && !f.startsWith('_')).map(f => f.slice(0, -3)).sort();
const [name, ...args] = process.argv.slice(2);
if (!name || !names.includes(name)) {
  console.error(`usage: npm run bench -- NAME   (one of: ${names.join(', ')})`);
  process.exit(name ? 2 : 0);
}
const env = {...process.env};
if (!args.includes('--keep-env')) delete env.NODE_EXTRA_CA_CERTS;
const r = spawnSync(process.execPath, [path.join(here, `${name}.js`), ...args], {stdio: 'inherit', env});
process.exit(r.status ?? 1);
