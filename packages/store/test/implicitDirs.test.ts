import {createHash} from 'node:crypto';
import {Readable} from 'node:stream';
import test from 'ava';
import * as tar from 'tar-stream';
import {type Digest, type Store, exportLayerStream} from '../src/index.js';
import {importTarStream} from '../src/import/importTar.js';
import {decodeTree, encodeTree} from '../src/objects/tree.js';
import {openTempStore} from './_helpers.js';

// A directory a layer tar has no entry for (the layer holds it only because a deeper path
// needs it) is recorded as implicit, and the layer exports without an entry for it.
// (How the merged view shows it: packages/union/test/implicitDirs.test.ts.)

interface Member {
  readonly name: string;
  readonly type?: 'file' | 'directory';
  readonly mode?: number;
  readonly mtime?: number;
  readonly content?: string;
}

/** A tar as strata's export writes one (tar-stream, no user or group names). */
async function tarOf(members: readonly Member[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise(resolve => pack.on('end', resolve));
  for (const m of members) {
    const body = Buffer.from(m.content ?? '');
    await new Promise<void>((resolve, reject) => pack.entry({
      name: m.name, type: m.type ?? 'file', mode: (m.mode ?? 0o644) | 0o100000, uid: 0, gid: 0, uname: '', gname: '',
      mtime: new Date((m.mtime ?? 1_700_000_100) * 1000), ...(m.type === 'directory' ? {} : {size: body.length}),
    }, m.type === 'directory' ? undefined : body, err => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

const BASE: Member[] = [
  {name: './', type: 'directory', mode: 0o755, mtime: 1_700_000_000},
  {name: 'tmp/', type: 'directory', mode: 0o1777, mtime: 1_700_000_000},
  {name: 'tmp/old', content: 'old'},
  {name: 'root/', type: 'directory', mode: 0o700, mtime: 1_700_000_000},
];
/** What `tar -cf up.tar tmp/foo root/.bashrc` holds: no entry for `./`, `tmp/` or `root/`. */
const UP: Member[] = [{name: 'tmp/foo', content: 'foo\n'}, {name: 'root/.bashrc', content: 'alias ll="ls -l"\n'}];

async function layer(store: Store, members: readonly Member[]): Promise<Digest> {
  return (await importTarStream(store, Readable.from([await tarOf(members)]))).layer.id;
}

async function exported(store: Store, id: Digest): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of exportLayerStream(store, id)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function memberNames(bytes: Buffer): Promise<string[]> {
  const names: string[] = [];
  const extract = tar.extract();
  const done = (async () => { for await (const e of extract) { names.push(e.header.name); e.resume(); } })();
  extract.end(bytes);
  await done;
  return names;
}

test('the layer records which directories were implicit, the root included', async t => {
  const store = await openTempStore(t);
  const id = await layer(store, UP);
  const root = await store.getTree(id);
  t.true(root.implicit);
  for (const e of root.entries) t.true(e.kind === 'dir' && (await store.getTree(e.tree)).implicit, e.name);
  const explicit = await store.getTree(await layer(store, BASE));
  t.falsy(explicit.implicit);
});

test('an implicit directory exports no entry of its own, so the tar comes back byte for byte', async t => {
  const store = await openTempStore(t);
  const source = await tarOf(UP);
  const id = await layer(store, UP);
  const out = await exported(store, id);
  t.deepEqual(await memberNames(out), ['root/.bashrc', 'tmp/foo']);
  // UP is written in strata's order and form; so the DiffID of the export is the source's.
  const sorted = await tarOf([...UP].sort((a, b) => a.name.localeCompare(b.name)));
  t.is(createHash('sha256').update(out).digest('hex'), createHash('sha256').update(sorted).digest('hex'));
  t.not(source.length, 0);
  // And importing the export gives the same layer.
  t.is(await layer(store, [...UP].sort((a, b) => a.name.localeCompare(b.name))), id);
});

test('an entry for the directory later in the same tar makes it explicit', async t => {
  const store = await openTempStore(t);
  const id = await layer(store, [...UP, {name: 'tmp/', type: 'directory', mode: 0o750, mtime: 5}]);
  const root = await store.getTree(id);
  const tmp = root.entries.find(e => e.name === 'tmp');
  t.like(tmp?.kind === 'dir' ? await store.getTree(tmp.tree) : undefined, {mode: 0o750, mtime: 5, implicit: undefined});
  t.deepEqual(await memberNames(await exported(store, id)), ['root/.bashrc', 'tmp/', 'tmp/foo']);
});

test('an opaque directory without an entry of its own is implicit and exports only its marker', async t => {
  const store = await openTempStore(t);
  const top = await layer(store, [{name: 'tmp/.wh..wh..opq', content: ''}, {name: 'tmp/new', content: 'n'}]);
  const tmp = (await store.getTree(top)).entries[0]!;
  t.like(tmp.kind === 'dir' ? await store.getTree(tmp.tree) : undefined, {implicit: true, opaque: true});
  t.deepEqual(await memberNames(await exported(store, top)), ['tmp/.wh..wh..opq', 'tmp/new']);
});

test('a tree marked implicit with metadata of its own is not in canonical form', t => {
  const bytes = encodeTree({mode: 0o755, uid: 0, gid: 0, mtime: 0, opaque: false, implicit: true, entries: []});
  t.is(bytes[5], 2, 'flag bit 1');
  const own = Buffer.from(bytes);
  own.writeUInt32BE(0o700, 6); // the directory's mode
  t.throws(() => decodeTree(own), {code: 'OBJECT_CORRUPT'});
  t.throws(() => encodeTree({mode: 0o700, uid: 0, gid: 0, mtime: 0, opaque: false, implicit: true, entries: []}), {instanceOf: TypeError});
});
