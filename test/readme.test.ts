import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'ava';
import {EXIT, buildCli} from '@strata/cli';
import {strata, tempStore} from './_cli.js';

// The README's tables are what users read first: its commands table must list exactly the
// commands strata has, and its exit-code table the codes strata returns (each code is
// also asserted by the tests of the cases that produce it).

const readme = fs.readFile(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'README.md'), 'utf8');

/** The rows of the markdown table under `## heading`: cells of each row after the header. */
async function tableUnder(heading: string): Promise<string[][]> {
  const text = await readme;
  const section = text.split(/^## /m).find(s => s.startsWith(`${heading}\n`));
  if (!section) throw new Error(`README has no "## ${heading}" section`);
  return section.split('\n').filter(l => l.startsWith('|')).slice(2)
    .map(l => l.replace(/\\\|/g, '\0').split('|').slice(1, -1).map(c => c.trim().replace(/\0/g, '|')));
}

test('the commands table lists every command strata has, and no other', async t => {
  const listed = new Set<string>();
  for (const [command] of await tableUnder('Commands')) {
    // The words after `strata ` up to the first argument (NAME, [--opt], -): `pin add|rm|ls` and
    // `fs CONTAINER ls|cat|...` stand for their groups.
    const m = /^`strata ([^`]*)`/.exec(command!);
    t.truthy(m, command);
    const words: string[] = [];
    for (const w of m![1]!.split(' ')) {
      if (!/^[a-z]/.test(w)) break;
      if (w.includes('|')) break;
      words.push(w);
    }
    listed.add(words.join(' '));
  }
  const paths = new Set(buildCli().definitions().map(d => d.path.replace(/^strata /, '')).filter(p => p !== 'strata'));
  const grouped = (p: string) => p.startsWith('fs ') ? 'fs' : p.startsWith('pin ') ? 'pin' : p === 'image ls' ? 'images' : p;
  t.deepEqual([...listed].sort(), [...new Set([...paths].map(grouped))].sort());
});

test('the exit-code table has exactly the codes strata uses', async t => {
  const codes = (await tableUnder('Exit codes')).map(([code]) => Number(code));
  t.deepEqual(codes.sort((a, b) => a - b), Object.values(EXIT).sort((a, b) => a - b));
});

test('each exit code of the table is what strata returns for its case', async t => {
  const store = await tempStore(t);
  t.is((await strata(['images'], {store})).code, EXIT.ok);
  t.is((await strata(['image', 'inspect', 'nope:1'], {store})).code, EXIT.failure); // well-formed, names nothing
  t.is((await strata(['image', 'inspect', 'Not A Tag'], {store})).code, EXIT.usage); // malformed
  t.is((await strata(['images', '--store', ''])).code, EXIT.usage);
  t.is((await strata(['no-such-command'], {store})).code, EXIT.usage);
  // 3 (damage) is asserted by the gc and verify tests, 75 (busy) by terminal.test.ts.
});
