import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import {strata, tempDir} from './_cli.js';
import {mustRun, storeTemplate, writeTree} from './_fixtures.js';

/** base:1 and the container web, which has changed /etc/hostname. */
const template = storeTemplate(async (store, scratch) => {
  await writeTree(path.join(scratch, 'base'), {'etc/hostname': 'base\n', 'etc/motd': 'hello\n', 'home': null});
  await mustRun(['import', path.join(scratch, 'base'), '--tag', 'base:1'], store);
  await mustRun(['create', 'base:1', '--name', 'web'], store);
  const r = await strata(['fs', 'web', 'write', '/etc/hostname'], {store, input: 'web\n'});
  if (r.code !== 0) throw new Error(r.stderr);
  return snapshot(store);
});

interface Case {
  readonly args: (dir: string) => string[];
  readonly input?: string;
  /** What the one line on stderr must say. */
  readonly says: RegExp;
  readonly exit?: number;
  /** Also check that the images are unchanged (for commands that could make one). */
  readonly images?: boolean;
}

const CASES: Record<string, Case> = {
  'an unknown container (fs)': {args: () => ['fs', 'nope', 'ls', '/'], says: /^strata: there is no container "nope"$/},
  'an unknown container (rm)': {args: () => ['rm', 'web', 'nope'], says: /no container "nope"/},
  'an unknown container (commit)': {args: () => ['commit', 'nope', '--tag', 'x:1'], says: /no container "nope"/},
  'an unknown image (create)': {args: () => ['create', 'nope:1', '--name', 'db'], says: /nope:1/, images: true},
  'an unknown view (diff)': {args: () => ['diff', 'web', 'nope'], says: /no container or image "nope"/},
  'an unknown view (checkout)': {args: dir => ['checkout', 'nope', path.join(dir, 'out')], says: /no container or image "nope"/},
  'one image given to diff': {args: () => ['diff', 'base:1'], says: /base:1 is an image/, exit: 2},
  'writing to a directory': {args: () => ['fs', 'web', 'write', '/etc'], input: 'x', says: /^strata: web:\/etc: is a directory \(open\)$/},
  'removing a missing path': {args: () => ['fs', 'web', 'rm', '/etc/motd', '/nope'], says: /^strata: web:\/nope: no such file or directory/},
  'removing a non-empty directory without -r': {args: () => ['fs', 'web', 'rm', '/etc'], says: /web:\/etc: directory not empty/},
  'a name that is taken': {args: () => ['create', 'base:1', '--name', 'web'], says: /the name "web" is already used/},
  'a bad name': {args: () => ['create', 'base:1', '--name', 'x/y'], says: /not a valid container name/, exit: 2},
  'cp to a container path whose parent is missing': {args: dir => ['cp', path.join(dir, 'f'), 'web:/no/such/f'], says: /^strata: web: the directory \/no\/such does not exist/},
  'cp from a missing host path': {args: dir => ['cp', path.join(dir, 'missing'), 'web:/etc'], says: /missing: no such file or directory on the host/},
  'cp without a container side': {args: dir => ['cp', path.join(dir, 'f'), path.join(dir, 'g')], says: /exactly one CONTAINER:PATH/, exit: 2},
  'cp out of a missing path': {args: dir => ['cp', 'web:/nope', dir], says: /web:\/nope: no such file or directory/},
  'cp out to a missing host directory': {args: dir => ['cp', 'web:/etc', path.join(dir, 'a', 'b')], says: /host directory .* does not exist/},
  'mkdir of an existing path': {args: () => ['fs', 'web', 'mkdir', '/etc/hostname'], says: /web:\/etc\/hostname: file exists/},
  'mkdir with a missing parent': {args: () => ['fs', 'web', 'mkdir', '/a/b'], says: /web:\/a\/b: no such file or directory/},
  'mv of a missing path': {args: () => ['fs', 'web', 'mv', '/nope', '/etc/x'], says: /web:\/nope: no such file or directory/},
  'a hard link to a directory': {args: () => ['fs', 'web', 'ln', '/etc', '/etc2'], says: /web:\/etc: operation not permitted/},
  'a bad mode': {args: () => ['fs', 'web', 'chmod', 'u+x', '/etc/motd'], says: /not an octal number/, exit: 2},
  'a reserved whiteout name': {args: () => ['fs', 'web', 'write', '/etc/.wh.motd'], input: 'x', says: /reserved for whiteouts/},
  'a bad tag on commit': {args: () => ['commit', 'web', '--tag', 'Bad Tag'], says: /Bad Tag/, exit: 2, images: true},
  'writing to an image': {args: dir => ['cp', path.join(dir, 'f'), 'base:1:/etc/f'], says: /no container "base:1"/},
};

/** What a failed command must leave as it was (one strata at a time: the store has one opener). */
async function snapshot(store: string): Promise<{ps: string; diff: string}> {
  return {ps: (await strata(['ps', '--json'], {store})).stdout, diff: (await strata(['diff', 'web'], {store})).stdout};
}

for (const [what, c] of Object.entries(CASES)) {
  test(`${what} is one line on stderr, a non-zero exit, and changes nothing`, async t => {
    const {store, made: before} = await template.copy(t);
    const images = c.images ? (await strata(['images', '--json'], {store})).stdout : '';
    const dir = await tempDir(t);
    fs.writeFileSync(path.join(dir, 'f'), 'f\n');
    const r = await strata(c.args(dir), {store, ...(c.input !== undefined ? {input: c.input} : {})});
    t.is(r.code, c.exit ?? 1, r.stderr);
    t.is(r.stdout, '');
    t.regex(r.stderr, /^strata: [^\n]+\n$/);
    t.regex(r.stderr.trimEnd(), c.says);
    t.deepEqual(await snapshot(store), before);
    if (c.images) t.is((await strata(['images', '--json'], {store})).stdout, images);
    t.is(before.diff, 'C /etc\nC /etc/hostname\n');
  });
}
