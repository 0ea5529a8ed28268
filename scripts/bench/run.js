#!/usr/bin/env node
// `npm run bench -- NAME [args]` runs scripts/bench/NAME.js (after `tsc -b`, which the
// benchmarks' imports of packages/*/dist need). Without NAME, lists the benchmarks.
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
const r = spawnSync(process.execPath, [path.join(here, `${name}.js`), ...args], {stdio: 'inherit'});
process.exit(r.status ?? 1);
