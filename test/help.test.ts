import test from 'ava';
import {buildCli} from '@strata/cli';
import {strata} from './_cli.js';

// Every registered command, so a command added later is checked too. clipanion's
// builtins (-h, --version) have no usage text and are left out.
const paths = buildCli().definitions().map(d => d.path.split(' ').slice(1).filter(w => !w.startsWith('<') && !w.startsWith('[') && !w.startsWith('-')).join(' ')).filter(p => p !== '');

test('every command is listed', t => {
  t.true(paths.length >= 8, paths.join(', '));
  for (const p of ['import', 'images', 'image inspect', 'image tag', 'image rm', 'layers', 'layer inspect']) t.true(paths.includes(p), p);
});

for (const p of new Set(paths)) {
  test(`strata ${p} --help exits 0 and shows an example`, async t => {
    const r = await strata([...p.split(' '), '--help']);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /\nExamples\n/);
    t.regex(r.stdout, new RegExp(`\\n  \\$ strata ${p}\\b`));
  });
}
