#!/usr/bin/env node
// `npm run bench -- NAME [args]` runs scripts/bench/NAME.js with the remaining arguments.
import {spawnSync} from 'node:child_process';
import {readdirSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import * as path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const names = readdirSync(here).filter(f => f.endsWith('.js') && !f.startsWith('_') && f !== 'run.js').map(f => f.slice(0, -3));
const [name, ...args] = process.argv.slice(2);
if (!name || !names.includes(name)) {
  console.error(`usage: npm run bench -- NAME [args]   (NAME: ${names.join(', ')})`);
  process.exit(2);
}
const r = spawnSync(process.execPath, [...process.execArgv, path.join(here, `${name}.js`), ...args], {stdio: 'inherit'});
process.exit(r.status ?? 1);
