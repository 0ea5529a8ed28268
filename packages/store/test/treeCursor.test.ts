import test from 'ava';
import {type Digest, type Tree, type TreeEntry, hashBytes} from '../src/index.js';
import {decodeTree, encodeTree} from '../src/objects/tree.js';
import {nameToBytes} from '../src/objects/names.js';
import {KIND_BLOCK, KIND_CHAR, KIND_DIR, KIND_FIFO, KIND_FILE, KIND_HARDLINK, KIND_SYMLINK, KIND_WHITEOUT, TreeCursor} from '../src/meta/treeCursor.js';

const d = (s: string) => hashBytes(Buffer.from(s));
const m = {mode: 0o644, uid: 1000, gid: 100, mtime: 1_700_000_000};

/** A tree with every kind, xattrs, byte names and odd numbers: what a metadata image's build reads. */
function everyKind(): Tree {
  return {
    mode: 0o755, uid: 0, gid: 0, mtime: -5, xattrs: {'security.selinux': Buffer.from('system_u'), 'user.a': Buffer.from([0, 1])}, opaque: false,
    entries: [
      {name: '-dash', kind: 'file', ...m, size: 0, blob: d('')},
      {name: 'bin', kind: 'dir', tree: d('bin')},
      {name: 'blk', kind: 'block', ...m, mode: 0o660, devmajor: 8, devminor: 1},
      {name: 'caps', kind: 'file', ...m, mtime: 2 ** 40, xattrs: {'security.capability': Buffer.from('01', 'hex')}, size: 2 ** 40 + 3, blob: d('caps')},
      {name: 'fifo', kind: 'fifo', ...m},
      {name: 'gone', kind: 'whiteout'},
      {name: 'link', kind: 'hardlink', ...m, size: 3, blob: d('x'), target: '/-dash'},
      {name: 'null', kind: 'char', ...m, mode: 0o666, devmajor: 1, devminor: 3},
      {name: 'sym', kind: 'symlink', ...m, mode: 0o777, target: '../a/b'},
      {name: 'z\udcff', kind: 'file', ...m, mode: 0o7777, size: 5, blob: d('z')},
    ],
  };
}

/** What the cursor reads, as decodeTree's entries. */
function readAll(bytes: Buffer): {meta: unknown; entries: TreeEntry[]} {
  const c = new TreeCursor(bytes, 'tree t');
  const entries: TreeEntry[] = [];
  while (c.next()) {
    const meta = {mode: c.eMode, uid: c.eUid, gid: c.eGid, mtime: c.eMtime, ...(c.eXattrs ? {xattrs: c.eXattrs} : {})};
    const n = c.name().toString('latin1');
    const ref = `b3:${c.refHex()}` as Digest;
    const target = c.target().toString('latin1');
    switch (c.kind) {
      case KIND_FILE: entries.push({...meta, name: n, kind: 'file', size: c.size, blob: ref}); break;
      case KIND_DIR: entries.push({name: n, kind: 'dir', tree: ref}); break;
      case KIND_SYMLINK: entries.push({...meta, name: n, kind: 'symlink', target}); break;
      case KIND_HARDLINK: entries.push({...meta, name: n, kind: 'hardlink', size: c.size, blob: ref, target}); break;
      case KIND_WHITEOUT: entries.push({name: n, kind: 'whiteout'}); break;
      case KIND_CHAR: case KIND_BLOCK: entries.push({...meta, name: n, kind: c.kind === KIND_CHAR ? 'char' : 'block', devmajor: c.devmajor, devminor: c.devminor}); break;
      case KIND_FIFO: entries.push({...meta, name: n, kind: 'fifo'}); break;
    }
  }
  return {meta: {mode: c.mode, uid: c.uid, gid: c.gid, mtime: c.mtime, ...(c.xattrs ? {xattrs: c.xattrs} : {})}, entries};
}

/** decodeTree's reading with names and targets as latin1 of their bytes, to compare with the cursor's. */
function asBytes(tree: Tree): {meta: unknown; entries: TreeEntry[]} {
  const latin = (s: string) => nameToBytes(s).toString('latin1');
  return {
    meta: {mode: tree.mode, uid: tree.uid, gid: tree.gid, mtime: tree.mtime, ...(tree.xattrs ? {xattrs: tree.xattrs} : {})},
    entries: tree.entries.map(e => ({...e, name: latin(e.name), ...('target' in e ? {target: latin(e.target)} : {})}) as TreeEntry),
  };
}

test('the cursor reads a tree of every kind as decodeTree does', t => {
  const bytes = encodeTree(everyKind());
  t.deepEqual(readAll(bytes), asBytes(decodeTree(bytes)));
});

test('the cursor refuses exactly the bytes decodeTree refuses (every byte of a tree changed in turn), and reads the rest alike', t => {
  const good = encodeTree(everyKind());
  let refused = 0, read = 0;
  for (let at = 0; at < good.length; at++) {
    for (const v of [0x00, 0x01, 0x2e, 0x2f, 0x7f, 0xff, good[at]! ^ 0x20]) {
      if (v === good[at]) continue;
      const bytes = Buffer.from(good);
      bytes[at] = v;
      let want: ReturnType<typeof asBytes> | undefined;
      try {
        want = asBytes(decodeTree(bytes));
      } catch {
        // refused
      }
      if (want === undefined) {
        t.throws(() => readAll(bytes), {code: 'OBJECT_CORRUPT'}, `byte ${at} = ${v}`);
        refused++;
      } else {
        t.deepEqual(readAll(bytes), want, `byte ${at} = ${v}`);
        read++;
      }
    }
  }
  // Both kinds of case were met: a test that only ever refused would prove little.
  t.true(refused > 100 && read > 100, `${refused} refused, ${read} read`);
  // Cut short or with bytes after: refused.
  t.throws(() => readAll(good.subarray(0, good.length - 1)), {code: 'OBJECT_CORRUPT'});
  t.throws(() => readAll(Buffer.concat([good, Buffer.of(0)])), {code: 'OBJECT_CORRUPT'});
});
