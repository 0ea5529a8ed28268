import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import {gzipSync} from 'node:zlib';
import test, {type ExecutionContext} from 'ava';
import {strata, tempDir} from './_cli.js';
import {mustRun, storeState, storeTemplate, tarOf, writeTar, writeTree} from './_fixtures.js';

/** A store holding one tagged image, so "unchanged" means something; and its state. */
const used = storeTemplate(async (store, scratch) => {
  await writeTree(path.join(scratch, 'base'), {'etc/hostname': 'strata\n'});
  await mustRun(['import', path.join(scratch, 'base'), '--tag', 'base:1'], store);
  return {layers: JSON.parse(await mustRun(['layers', '--json'], store)), images: JSON.parse(await mustRun(['images', '--json'], store))};
});

/**
 * The command fails with `code`, exactly one line on stderr that starts "strata: " and
 * matches `message`, nothing on stdout, no stack trace, and leaves layers and images as they were.
 */
const refused = test.macro(async (t, make: (t: ExecutionContext, work: string) => Promise<string[]>, code: number, message: RegExp) => {
  const {store, made: before} = await used.copy(t);
  const args = await make(t, await tempDir(t));
  const r = await strata(args, {store});
  t.is(r.code, code, r.stderr);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^strata: [^\n]+\n$/);
  t.regex(r.stderr, message);
  t.notRegex(r.stderr, /\bat .*:\d+:\d+/);
  t.deepEqual(await storeState(t, store), before);
});

test('a missing path', refused, async (_t, work) => ['import', path.join(work, 'nope')], 1, /nope does not exist/);

test('a socket in a directory', refused, async (t, work) => {
  await writeTree(work, {'a.txt': 'a'});
  const server = net.createServer();
  await new Promise<void>(resolve => server.listen(path.join(work, 'sock'), resolve));
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())));
  return ['import', work, '--tag', 'x:1'];
}, 1, /sock is a socket/);

test('a truncated tar', refused, async (_t, work) => {
  const tar = tarOf([{name: 'big.bin', content: 'y'.repeat(5000)}]);
  await fs.writeFile(path.join(work, 'cut.tar'), tar.subarray(0, 2048));
  return ['import', path.join(work, 'cut.tar'), '--tag', 'x:1'];
}, 1, /truncated or corrupt/);

test('a truncated tar.gz', refused, async (_t, work) => {
  const gz = gzipSync(tarOf([{name: 'a.txt', content: 'z'.repeat(100_000)}, {name: 'b.txt', content: 'b'}]));
  await fs.writeFile(path.join(work, 'cut.tar.gz'), gz.subarray(0, Math.floor(gz.length / 2)));
  return ['import', path.join(work, 'cut.tar.gz')];
}, 1, /truncated or corrupt/);

test('a file that is not a tar', refused, async (_t, work) => {
  await fs.writeFile(path.join(work, 'notes.tar'), 'not a tar at all\n');
  return ['import', path.join(work, 'notes.tar')];
}, 1, /truncated or corrupt/);

test('an absolute path in a tar', refused, async (_t, work) =>
  ['import', await writeTar(path.join(work, 'abs.tar'), [{name: 'ok.txt', content: 'ok'}, {name: '/etc/evil', content: 'x'}])], 1, /"\/etc\/evil" is an absolute path/);

test('a path climbing out with .. in a tar', refused, async (_t, work) =>
  ['import', await writeTar(path.join(work, 'up.tar.gz'), [{name: 'a/../../evil', content: 'x'}])], 1, /climbs out/);

test('a hardlink to a path outside the tar', refused, async (_t, work) =>
  ['import', await writeTar(path.join(work, 'link.tar'), [{name: 'passwd', type: '1', linkname: '/etc/passwd'}])], 1, /"\/etc\/passwd" is an absolute path/);

test('a hardlink to a name the tar does not hold', refused, async (_t, work) =>
  ['import', await writeTar(path.join(work, 'link.tar'), [{name: 'a.txt', content: 'a'}, {name: 'passwd', type: '1', linkname: 'etc/passwd'}])], 1, /hardlink "passwd" points to "etc\/passwd"/);

test('a bad NAME:TAG on import, before anything is imported', refused, async (_t, work) => {
  await writeTree(work, {'new.txt': 'never stored'});
  return ['import', work, '--tag', 'Not A Tag'];
}, 2, /"Not A Tag" is not a valid name:tag/);

test('a bad NAME:TAG on image tag', refused, async () => ['image', 'tag', 'base:1', 'base:bad tag'], 2, /not a valid name:tag/);

test('an unknown image for --on, before anything is imported', refused, async (_t, work) => {
  await writeTree(work, {'new.txt': 'never stored'});
  return ['import', work, '--on', 'nope:1', '--tag', 'x:1'];
}, 1, /there is no image "nope:1"/);

test('--on without --tag', refused, async (_t, work) => ['import', work, '--on', 'base:1'], 2, /--on needs --tag/);

test('an unknown image to inspect', refused, async () => ['image', 'inspect', 'nope:1'], 1, /there is no image "nope:1"/);

test('an unknown image to tag', refused, async () => ['image', 'tag', 'nope', 'x:1'], 1, /there is no image "nope"/);

test('an unknown image among several to remove removes none', refused, async () => ['image', 'rm', 'base:1', 'nope:2'], 1, /there is no image "nope:2"/);

test('an unknown layer to inspect', refused, async () => ['layer', 'inspect', 'b3:00000000'], 1, /layer/);
