import type {ExecutionContext, TestFn} from 'ava';
import {DIR, type Info, type LayerSpec, OPAQUE, type Step, type Subject, WHITEOUT} from './_helpers.js';

/** What a step must give: a value (partial for stat info), an error code, or just success. */
type Expect = {readonly ok?: string | string[] | Partial<Info> | null} | {readonly err: string};
type Line = readonly [Step] | readonly [Step, Expect];

interface Case {
  readonly title: string;
  /** Layers bottom first; the container's empty writable layer goes on top. */
  readonly layers: readonly LayerSpec[];
  readonly steps: readonly Line[];
}

const ok = (v: string | string[] | Partial<Info> | null): Expect => ({ok: v});
const err = (code: string): Expect => ({err: code});
const file = (extra: Partial<Info> = {}): Expect => ({ok: {kind: 'file', ...extra}});
const dir = (extra: Partial<Info> = {}): Expect => ({ok: {kind: 'dir', ...extra}});

/**
 * The union rules of docs/union-rules.md as cases, each a stack of layers and the steps a
 * process in the container takes, with what each step must answer. The same cases run
 * over the strata view and over a kernel overlayfs mount of the same layers.
 */
export const CASES: readonly Case[] = [
  // ---- reading
  {title: 'lookup goes top-down and the first layer that has a path answers', layers: [{'/a': 'one', '/b': 'two'}, {'/c': 'three'}, {'/a': 'four'}],
    steps: [[['read', '/a'], ok('four')], [['read', '/b'], ok('two')], [['readdir', '/'], ok(['a', 'b', 'c'])]]},
  {title: 'the upper shadows the lower', layers: [{'/a': 'low'}],
    steps: [[['write', '/a', 'up']], [['read', '/a'], ok('up')]]},
  {title: 'a whiteout hides a name in every layer below', layers: [{'/a': 'low', '/b': 'b'}, {'/x': 'x'}, {'/a': WHITEOUT}],
    steps: [[['read', '/a'], err('ENOENT')], [['lstat', '/a'], err('ENOENT')], [['readdir', '/'], ok(['b', 'x'])]]},
  {title: 'a layer above a whiteout shows its own entry', layers: [{'/a': 'one'}, {'/a': WHITEOUT}, {'/a': 'three'}],
    steps: [[['read', '/a'], ok('three')]]},
  {title: 'a whiteout of a directory hides all of it', layers: [{'/d/x': 'x', '/d/e/y': 'y'}, {'/d': WHITEOUT}],
    steps: [[['lstat', '/d'], err('ENOENT')], [['read', '/d/e/y'], err('ENOENT')], [['readdir', '/'], ok([])]]},
  {title: 'an opaque directory hides what the layers below have in it', layers: [{'/d/x': 'x', '/d/y': 'y'}, {'/d': OPAQUE, '/d/z': 'z'}],
    steps: [[['readdir', '/d'], ok(['z'])], [['read', '/d/x'], err('ENOENT')]]},
  {title: 'entries above an opaque directory still merge with it', layers: [{'/d/x': 'x'}, {'/d': OPAQUE, '/d/z': 'z'}, {'/d/w': 'w'}],
    steps: [[['readdir', '/d'], ok(['w', 'z'])]]},
  {title: 'a listing merges every layer, with whiteouts removing names', layers: [{'/d/a': 'a', '/d/b': 'b'}, {'/d/b': 'B', '/d/c': 'c'}, {'/d/a': WHITEOUT, '/d/e': DIR}],
    steps: [[['readdir', '/d'], ok(['b', 'c', 'e'])], [['read', '/d/b'], ok('B')]]},
  {title: 'a file over a directory is a file', layers: [{'/x/y': 'y'}, {'/x': 'file'}],
    steps: [[['lstat', '/x'], file({size: 4})], [['read', '/x/y'], err('ENOTDIR')], [['readdir', '/x'], err('ENOTDIR')]]},
  {title: 'a directory over a file is a directory', layers: [{'/x': 'file'}, {'/x/y': 'y'}],
    steps: [[['lstat', '/x'], dir()], [['readdir', '/x'], ok(['y'])], [['read', '/x'], err('EISDIR')]]},
  {title: 'a symlink over a directory is a symlink', layers: [{'/x/y': 'y', '/t/z': 'z'}, {'/x': {symlink: 't'}}],
    steps: [[['lstat', '/x'], ok({kind: 'symlink'})], [['readdir', '/x'], ok(['z'])], [['read', '/x/y'], err('ENOENT')]]},

  // ---- writing
  {title: 'a new file goes into the upper with mode 0644', layers: [{'/d/a': 'a'}],
    steps: [[['write', '/d/n', 'new']], [['read', '/d/n'], ok('new')], [['lstat', '/d/n'], file({mode: 0o644, size: 3})], [['readdir', '/d'], ok(['a', 'n'])]]},
  {title: 'writing a lower file copies it up with its mode and owner', layers: [{'/a': {file: 'low', mode: 0o600, uid: 1000, gid: 1001}}],
    steps: [[['write', '/a', 'changed']], [['read', '/a'], ok('changed')], [['lstat', '/a'], file({mode: 0o600, uid: 1000, gid: 1001, size: 7})]]},
  {title: 'copy-up brings the parents with their metadata', layers: [{'/d': {dir: true, mode: 0o750, uid: 7, gid: 8}, '/d/e/f': 'f', '/d/g': 'g'}],
    steps: [[['write', '/d/e/f', 'F']], [['lstat', '/d'], dir({mode: 0o750, uid: 7, gid: 8})], [['readdir', '/d'], ok(['e', 'g'])], [['read', '/d/g'], ok('g')]]},
  {title: 'copy-up leaves the parents\' mtimes as they were', layers: [{'/d/e/a': 'x', '/d/b': 'b', '/r': 'r'}],
    steps: [[['write', '/d/e/a', 'y']], [['chmod', '/d/b', 0o600]], [['chown', '/r', 3, 3]],
      [['lstat', '/d/e'], dir({mtime: 1_700_000_000})], [['lstat', '/d'], dir({mtime: 1_700_000_000})], [['lstat', '/'], dir({mtime: 1_700_000_000})]]},
  {title: 'copy-up keeps setuid and setgid bits of the entry and its parents', layers: [{'/d': {dir: true, mode: 0o2775, uid: 7, gid: 8}, '/d/su': {file: 'su', mode: 0o6755, uid: 7, gid: 8}}],
    steps: [[['utimes', '/d/su', 1_000_000]], [['lstat', '/d/su'], file({mode: 0o6755, uid: 7, gid: 8})], [['lstat', '/d'], dir({mode: 0o2775, uid: 7, gid: 8})]]},
  {title: 'chmod copies up and keeps the content', layers: [{'/a': 'content'}],
    steps: [[['chmod', '/a', 0o700]], [['lstat', '/a'], file({mode: 0o700})], [['read', '/a'], ok('content')]]},
  {title: 'chmod of a lower directory keeps its lower entries', layers: [{'/d/x': 'x'}],
    steps: [[['chmod', '/d', 0o711]], [['lstat', '/d'], dir({mode: 0o711})], [['readdir', '/d'], ok(['x'])]]},
  {title: 'chown copies up', layers: [{'/a': 'content'}],
    steps: [[['chown', '/a', 1234, 5678]], [['lstat', '/a'], file({uid: 1234, gid: 5678})], [['read', '/a'], ok('content')]]},
  {title: 'utimes copies up', layers: [{'/a': 'content'}],
    steps: [[['utimes', '/a', 1_000_000]], [['lstat', '/a'], file({mtime: 1_000_000})]]},
  {title: 'chmod through a symlink changes its target', layers: [{'/a': 'x', '/s': {symlink: 'a'}}],
    steps: [[['chmod', '/s', 0o600]], [['lstat', '/a'], file({mode: 0o600})], [['lstat', '/s'], ok({kind: 'symlink'})]]},
  {title: 'writing a directory fails with EISDIR', layers: [{'/d/x': 'x'}],
    steps: [[['write', '/d', 'x'], err('EISDIR')], [['readdir', '/d'], ok(['x'])]]},
  {title: 'a path through a file fails with ENOTDIR', layers: [{'/f': 'f'}],
    steps: [[['write', '/f/x', 'x'], err('ENOTDIR')], [['mkdir', '/f/d'], err('ENOTDIR')], [['lstat', '/f/x'], err('ENOTDIR')]]},
  {title: 'a missing parent fails with ENOENT', layers: [{'/f': 'f'}],
    steps: [[['write', '/no/x', 'x'], err('ENOENT')], [['mkdir', '/no/d'], err('ENOENT')], [['symlink', 'f', '/no/s'], err('ENOENT')]]},
  {title: 'mkdir over an existing name fails with EEXIST', layers: [{'/d/x': 'x', '/f': 'f'}],
    steps: [[['mkdir', '/d'], err('EEXIST')], [['mkdir', '/f'], err('EEXIST')]]},

  // ---- deleting
  {title: 'removing a lower file hides it', layers: [{'/a': 'a', '/b': 'b'}],
    steps: [[['rm', '/a']], [['read', '/a'], err('ENOENT')], [['readdir', '/'], ok(['b'])], [['rm', '/a'], err('ENOENT')]]},
  {title: 'removing a new file removes it', layers: [{'/b': 'b'}],
    steps: [[['write', '/n', 'n']], [['rm', '/n']], [['lstat', '/n'], err('ENOENT')], [['readdir', '/'], ok(['b'])]]},
  {title: 'removing a non-empty directory needs recursion', layers: [{'/d/x': 'x', '/d/e/y': 'y'}],
    steps: [[['rm', '/d'], err('ENOTEMPTY')], [['rmr', '/d']], [['lstat', '/d'], err('ENOENT')], [['read', '/d/e/y'], err('ENOENT')]]},
  {title: 'the root cannot be removed or renamed', layers: [{'/a': 'a'}],
    steps: [[['rm', '/'], err('EBUSY')], [['rename', '/', '/x'], err('EBUSY')], [['readdir', '/'], ok(['a'])]]},
  {title: 'a lower directory whose entries were all removed is empty and can be removed', layers: [{'/d/x': 'x'}],
    steps: [[['rm', '/d/x']], [['readdir', '/d'], ok([])], [['rm', '/d']], [['lstat', '/d'], err('ENOENT')]]},
  {title: 'a directory made where a lower one was removed is opaque', layers: [{'/d/x': 'x', '/d/e/y': 'y'}],
    steps: [[['rmr', '/d']], [['mkdir', '/d']], [['readdir', '/d'], ok([])], [['mkdir', '/d/e']], [['readdir', '/d/e'], ok([])]]},
  {title: 'a file made where a lower one was removed is new', layers: [{'/a': {file: 'old', mode: 0o600}}],
    steps: [[['rm', '/a']], [['write', '/a', 'new']], [['read', '/a'], ok('new')], [['lstat', '/a'], file({mode: 0o644})]]},
  {title: 'a lower file can become a directory and a lower directory a file', layers: [{'/f': 'f', '/d/x': 'x'}],
    steps: [[['rm', '/f']], [['mkdir', '/f']], [['write', '/f/in', 'in']], [['rmr', '/d']], [['write', '/d', 'now a file']],
      [['readdir', '/f'], ok(['in'])], [['read', '/d'], ok('now a file')], [['readdir', '/'], ok(['d', 'f'])]]},

  // ---- renaming
  {title: 'renaming a new file moves it', layers: [{'/b': 'b'}],
    steps: [[['write', '/n', 'n']], [['rename', '/n', '/m']], [['read', '/m'], ok('n')], [['lstat', '/n'], err('ENOENT')]]},
  {title: 'renaming a lower file copies it up and hides the old name', layers: [{'/a': {file: 'low', mode: 0o640}}],
    steps: [[['rename', '/a', '/b']], [['read', '/b'], ok('low')], [['lstat', '/b'], file({mode: 0o640})], [['lstat', '/a'], err('ENOENT')], [['readdir', '/'], ok(['b'])]]},
  {title: 'renaming a lower file over another replaces it', layers: [{'/a': 'A', '/b': 'B'}],
    steps: [[['rename', '/a', '/b']], [['read', '/b'], ok('A')], [['readdir', '/'], ok(['b'])]]},
  {title: 'renaming a new directory moves its contents', layers: [{'/b': 'b'}],
    steps: [[['mkdir', '/u']], [['write', '/u/f', 'f']], [['rename', '/u', '/v']], [['read', '/v/f'], ok('f')], [['readdir', '/'], ok(['b', 'v'])]]},
  {title: 'renaming a lower directory keeps all it showed', layers: [{'/d/x': 'x', '/d/s/y': 'y', '/d/gone': 'g'}, {'/d/z': 'z', '/d/gone': WHITEOUT}],
    steps: [[['rename', '/d', '/e']], [['readdir', '/e'], ok(['s', 'x', 'z'])], [['read', '/e/s/y'], ok('y')], [['lstat', '/d'], err('ENOENT')],
      [['mkdir', '/d']], [['readdir', '/d'], ok([])]]},
  {title: 'renaming a changed lower directory keeps its changes', layers: [{'/d/x': 'x', '/d/y': 'y'}],
    steps: [[['rm', '/d/x']], [['write', '/d/n', 'n']], [['chmod', '/d', 0o700]], [['rename', '/d', '/e']], [['readdir', '/e'], ok(['n', 'y'])], [['lstat', '/e'], dir({mode: 0o700})]]},
  {title: 'renaming a directory onto a removed lower directory shows only what it had', layers: [{'/d/x': 'x', '/e/old': 'o'}],
    steps: [[['rmr', '/e']], [['rename', '/d', '/e']], [['readdir', '/e'], ok(['x'])]]},
  {title: 'renaming a new directory over an empty lower directory shows only what it had', layers: [{'/e/old': 'o'}],
    steps: [[['rm', '/e/old']], [['mkdir', '/n']], [['write', '/n/f', 'f']], [['rename', '/n', '/e']], [['readdir', '/e'], ok(['f'])]]},
  {title: 'rename refuses what rename(2) refuses', layers: [{'/d/x': 'x', '/f': 'f', '/full/y': 'y', '/empty': DIR}],
    steps: [[['rename', '/d', '/d/x/in'], err('ENOTDIR')], [['rename', '/d', '/d/in'], err('EINVAL')], [['rename', '/d', '/f'], err('ENOTDIR')],
      [['rename', '/f', '/d'], err('EISDIR')], [['rename', '/d', '/full'], err('ENOTEMPTY')], [['rename', '/missing', '/m'], err('ENOENT')],
      [['readdir', '/'], ok(['d', 'empty', 'f', 'full'])]]},
  {title: 'rename looks up both parents before the old name', layers: [{'/f': 'f', '/s': {symlink: 'f'}}],
    steps: [[['rename', '/missing', '/f/x'], err('ENOTDIR')], [['rename', '/missing', '/s/x'], err('ENOTDIR')], [['rename', '/missing', '/no/x'], err('ENOENT')]]},
  {title: 'renaming onto an ancestor fails with ENOTEMPTY', layers: [{'/d/e/x': 'x'}],
    steps: [[['rename', '/d/e/x', '/d'], err('ENOTEMPTY')], [['rename', '/d/e', '/d'], err('ENOTEMPTY')], [['readdir', '/d/e'], ok(['x'])]]},
  {title: 'renaming a hardlink onto another link of the same file does nothing', layers: [{'/c': 'c'}],
    steps: [[['link', '/c', '/d']], [['rename', '/d', '/c']], [['readdir', '/'], ok(['c', 'd'])], [['write', '/d', 'shared']], [['read', '/c'], ok('shared')]]},
  {title: 'lower hardlinks are separate files in the view, so renaming one onto another replaces it', layers: [{'/a': 'x', '/b': {link: '/a'}}],
    steps: [[['rename', '/a', '/b']], [['readdir', '/'], ok(['b'])], [['read', '/b'], ok('x')]]},
  {title: 'renaming a directory over an empty one replaces it', layers: [{'/d/x': 'x', '/empty': DIR}],
    steps: [[['rename', '/d', '/empty']], [['readdir', '/empty'], ok(['x'])], [['readdir', '/'], ok(['empty'])]]},

  // ---- symlinks
  {title: 'an absolute symlink resolves inside the view', layers: [{'/etc/hostname': 'inside the view', '/s': {symlink: '/etc/hostname'}}],
    steps: [[['read', '/s'], ok('inside the view')], [['stat', '/s'], file({size: 15})], [['readlink', '/s'], ok('/etc/hostname')]]},
  {title: 'a relative symlink cannot climb above the root', layers: [{'/a': 'root a', '/d/s': {symlink: '../../../../a'}, '/d/t': {symlink: '/../../../d/../a'}}],
    steps: [[['read', '/d/s'], ok('root a')], [['read', '/d/t'], ok('root a')]]},
  {title: 'a symlink to a host path finds nothing outside the view', layers: [{'/p': {symlink: '/../../etc/passwd'}, '/r': {symlink: '../proc/self'}}],
    steps: [[['read', '/p'], err('ENOENT')], [['stat', '/r'], err('ENOENT')]]},
  {title: 'writing through an absolute symlink writes inside the view', layers: [{'/d': DIR, '/s': {symlink: '/d/new'}}],
    steps: [[['write', '/s', 'via link']], [['read', '/d/new'], ok('via link')], [['lstat', '/s'], ok({kind: 'symlink'})]]},
  {title: 'a symlink in the middle of a path is followed', layers: [{'/real/f': 'f', '/link': {symlink: '/real'}}],
    steps: [[['read', '/link/f'], ok('f')], [['write', '/link/g', 'g']], [['read', '/real/g'], ok('g')], [['readdir', '/link'], ok(['f', 'g'])]]},
  {title: 'a symlink loop fails with ELOOP', layers: [{'/a': {symlink: 'b'}, '/b': {symlink: 'a'}}],
    steps: [[['read', '/a'], err('ELOOP')], [['write', '/a', 'x'], err('ELOOP')], [['lstat', '/a'], ok({kind: 'symlink'})]]},
  {title: 'readlink gives the stored target and refuses a non-link', layers: [{'/f': 'f'}],
    steps: [[['symlink', '../x/./y', '/s']], [['readlink', '/s'], ok('../x/./y')], [['readlink', '/f'], err('EINVAL')], [['symlink', 'f', '/s'], err('EEXIST')]]},
  {title: 'removing a symlink leaves its target', layers: [{'/f': 'f', '/s': {symlink: 'f'}}],
    steps: [[['rm', '/s']], [['read', '/f'], ok('f')], [['readdir', '/'], ok(['f'])]]},

  // ---- resolving paths, part by part (path_resolution(7))
  {title: 'a ".." after a symlink steps back from the symlink\'s target', layers: [{'/usr/bin/sh': 'sh', '/etc/hostname': 'host', '/bin': {symlink: 'usr/bin'}}],
    steps: [[['read', '/bin/../etc/hostname'], err('ENOENT')], [['write', '/bin/../etc/hostname', 'x'], err('ENOENT')], [['read', '/bin/../bin/sh'], ok('sh')],
      [['readdir', '/bin/..'], ok(['bin'])], [['mkdir', '/bin/../lib']], [['readdir', '/usr'], ok(['bin', 'lib'])], [['lstat', '/lib'], err('ENOENT')],
      [['write', '/bin/../lib/f', 'f']], [['read', '/usr/lib/f'], ok('f')], [['read', '/etc/hostname'], ok('host')]]},
  {title: 'a ".." after nested symlinks steps back from the last target', layers: [{'/a/b/c/f': 'deep', '/a/b/g': 'g', '/l1': {symlink: 'a/l2'}, '/a/l2': {symlink: 'b/c'}}],
    steps: [[['read', '/l1/../g'], ok('g')], [['read', '/l1/../../l2/f'], ok('deep')], [['readdir', '/l1/..'], ok(['c', 'g'])], [['stat', '/l1/../..'], dir()],
      [['readdir', '/a/l2/../..'], ok(['b', 'l2'])]]},
  {title: 'an absolute symlink target starts again at the root, and ".." goes on from there', layers: [{'/x/y/z': 'z', '/x/w': 'w', '/d/s': {symlink: '/x/y'}, '/d/w': 'not this'}],
    steps: [[['read', '/d/s/../w'], ok('w')], [['read', '/d/s/../../d/s/z'], ok('z')], [['write', '/d/s/../n', 'n']], [['read', '/x/n'], ok('n')], [['lstat', '/d/n'], err('ENOENT')]]},
  {title: 'a ".." at the root stays at the root', layers: [{'/a': 'a', '/d/f': 'f'}],
    steps: [[['read', '/../a'], ok('a')], [['read', '/../../d/../../a'], ok('a')], [['readdir', '/..'], ok(['a', 'd'])], [['write', '/../../n', 'n']],
      [['read', '/n'], ok('n')], [['rm', '/..'], err('ENOTEMPTY')], [['rename', '/..', '/x'], err('EBUSY')]]},
  {title: 'a ".." needs the part before it to be a directory that exists', layers: [{'/f': 'f', '/d/x': 'x', '/s': {symlink: 'f'}, '/dangling': {symlink: 'none'}}],
    steps: [[['read', '/missing/../f'], err('ENOENT')], [['read', '/f/../f'], err('ENOTDIR')], [['read', '/s/../f'], err('ENOTDIR')],
      [['read', '/dangling/../f'], err('ENOENT')], [['read', '/d/../f'], ok('f')], [['lstat', '/f/.'], err('ENOTDIR')], [['write', '/missing/../n', 'n'], err('ENOENT')]]},
  {title: 'a last part "." or ".." names a directory that cannot be made, removed or renamed', layers: [{'/d/e/x': 'x'}],
    steps: [[['rm', '/d/e/..'], err('ENOTEMPTY')], [['rm', '/d/.'], err('EINVAL')], [['mkdir', '/d/..'], err('EEXIST')], [['mkdir', '/d/.'], err('EEXIST')],
      [['rename', '/d/e/..', '/z'], err('EBUSY')], [['rename', '/d/e/x', '/d/.'], err('EBUSY')], [['symlink', 'x', '/d/..'], err('EEXIST')],
      [['link', '/d/e/x', '/d/.'], err('EEXIST')], [['write', '/d/.', 'x'], err('EISDIR')], [['readdir', '/d/e/..'], ok(['e'])],
      [['chmod', '/d/e/..', 0o700]], [['lstat', '/d'], dir({mode: 0o700})], [['readdir', '/d/e'], ok(['x'])]]},
  {title: 'a trailing slash asks for a directory', layers: [{'/f': 'f', '/d/x': 'x', '/sd': {symlink: 'd'}, '/sf': {symlink: 'f'}, '/dangling': {symlink: 'none'}}],
    steps: [[['lstat', '/f/'], err('ENOTDIR')], [['read', '/f/'], err('ENOTDIR')], [['lstat', '/sd/'], dir()], [['readdir', '/sd/'], ok(['x'])],
      [['readlink', '/sd/'], err('EINVAL')], [['lstat', '/sf/'], err('ENOTDIR')], [['lstat', '/dangling/'], err('ENOENT')], [['chmod', '/f/', 0o600], err('ENOTDIR')],
      [['write', '/f/', 'x'], err('EISDIR')], [['write', '/n/', 'x'], err('EISDIR')], [['write', '/no/n/', 'x'], err('ENOENT')], [['mkdir', '/f/'], err('EEXIST')], [['mkdir', '/sd/'], err('EEXIST')],
      [['mkdir', '/m/']], [['lstat', '/m'], dir()], [['symlink', 'f', '/s2/'], err('ENOENT')], [['link', '/f', '/l2/'], err('ENOENT')], [['link', '/f/', '/l2'], err('ENOTDIR')],
      [['rm', '/f/'], err('ENOTDIR')], [['rm', '/sd/'], err('ENOTDIR')], [['rm', '/sf/'], err('ENOTDIR')], [['rm', '/dangling/'], err('ENOENT')],
      [['rename', '/f/', '/g'], err('ENOTDIR')], [['rename', '/f', '/g/'], err('ENOTDIR')], [['rename', '/sd/', '/e'], err('ENOTDIR')],
      [['rename', '/d/', '/e/']], [['readdir', '/e/'], ok(['x'])], [['rm', '/m/']], [['readdir', '/'], ok(['dangling', 'e', 'f', 'sd', 'sf'])]]},

  // ---- hardlinks
  {title: 'hardlinks of a lower layer read the same', layers: [{'/a': 'same', '/d/b': {link: '/a'}}],
    steps: [[['read', '/d/b'], ok('same')], [['lstat', '/d/b'], file({size: 4})]]},
  {title: 'a hardlink made in the container shares later writes', layers: [{'/a': 'x'}],
    steps: [[['link', '/a', '/b']], [['write', '/a', 'y']], [['read', '/b'], ok('y')], [['chmod', '/b', 0o600]], [['lstat', '/a'], file({mode: 0o600})]]},
  {title: 'writing one lower hardlink copies up only that name', layers: [{'/a': 'x', '/b': {link: '/a'}}],
    steps: [[['write', '/a', 'y']], [['read', '/a'], ok('y')], [['read', '/b'], ok('x')]]},
  {title: 'link refuses directories and existing names', layers: [{'/a': 'x', '/d': DIR}],
    steps: [[['link', '/d', '/e'], err('EPERM')], [['link', '/a', '/d'], err('EEXIST')], [['link', '/d', '/a'], err('EEXIST')], [['link', '/missing', '/m'], err('ENOENT')]]},
];

/** Registers every case for one kind of subject. */
export function layerSuite(test: TestFn, name: string, open: (t: ExecutionContext, layers: readonly LayerSpec[]) => Promise<Subject>): void {
  for (const c of CASES) {
    test(`${name}: ${c.title}`, async t => {
      const subject = await open(t, c.layers);
      for (const [step, expected] of c.steps) {
        const got = await subject.run(step);
        const label = `${JSON.stringify(step)} on ${subject.name}`;
        if (expected === undefined || (!('err' in expected) && expected.ok === undefined)) t.true('ok' in got, `${label}: ${JSON.stringify(got)}`);
        else t.like(got, expected as Record<string, unknown>, label);
      }
    });
  }
}
