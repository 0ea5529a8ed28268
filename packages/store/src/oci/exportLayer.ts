import {createHash} from 'node:crypto';
import * as fs from 'node:fs/promises';
import {PassThrough, type Readable, Transform} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import * as tar from 'tar-stream';
import * as tarHeaders from 'tar-stream/headers.js';
import {type Compression, createCompressor} from './compress.js';
import {sha256Tap} from './Sha256Tap.js';
import type {Digest} from '../objects/digest.js';
import {StoreError, rethrowNoSpace} from '../errors.js';
import {definedOnUse} from '../host/definedOnUse.js';
import {DEFAULT_DIR_META} from '../import/LayerBuilder.js';
import type {Store} from '../objects/Store.js';
import type {BlobValue} from '../index/values.js';
import type {Meta, Tree, TreeEntry} from '../objects/tree.js';
import {checkBlobBytes} from '../objects/verifiedRead.js';
import {OPAQUE_MARKER, WHITEOUT_PREFIX} from '../objects/whiteoutNames.js';
import {hasEscapedBytes, nameToBytes} from '../objects/names.js';
import {encodePaxBytes} from '../import/tarBytes.js';
import {isUtf8} from 'node:buffer';

/** Whiteout and opaque marker files carry this fixed metadata: nothing of the host leaks in. */
const MARKER_META: Meta = {mode: 0o644, uid: 0, gid: 0, mtime: 0};
/** tar-stream replaces a falsy mode with its default; a type bit keeps mode 0 (it is masked off). */
const KEEP_MODE = 0o100000;
const USTAR_ID_MAX = 0o777777;
/**
 * Object files up to this size are read whole (one read, no stream): most files of a root
 * filesystem are a few KiB to a few hundred, and a stream per file costs more than the read.
 */
const READ_WHOLE = 1024 * 1024;
/** Subdirectory trees read at once while a directory is written (a window: memory stays bounded). */
const SUBTREES_AHEAD = 32;

type Header = tar.Headers & {pax?: Record<string, string>; raw?: Buffer};

/**
 * A layer as an OCI layer tar (uncompressed). Deterministic: entries in tree order (a
 * directory, its opaque marker, then its entries by name), mtimes as stored, no user or
 * group names, no host fields. Whiteouts become `.wh.<name>`, opaque directories get a
 * `.wh..wh..opq` entry, hardlinks are tar links (emitted after their target, since a tar
 * link may only name an earlier entry), xattrs are SCHILY.xattr pax records. The root
 * directory gets a `./` entry, and any other directory an entry, unless the source had none
 * for it (an implicit directory). Importing the output gives the same layer id. Throws (on the stream)
 * UNKNOWN_LAYER, OBJECT_MISSING, OBJECT_CORRUPT.
 */
export function exportLayerStream(store: Store, id: Digest): Readable {
  const pack = tar.pack();
  void writeLayer(store, id, pack).then(() => pack.finalize(), err => pack.destroy(err as Error));
  return pack as unknown as Readable;
}

async function writeLayer(store: Store, id: Digest, pack: tar.Pack): Promise<void> {
  const record = await store.getLayer(id);
  if (!record) throw new StoreError('UNKNOWN_LAYER', `there is no layer ${id}`);
  // Which paths have been written matters only for the paths hardlinks name: those alone
  // are remembered, so memory grows with the layer's hardlinks, not with its files.
  const root = await store.getTree(id, {cache: false});
  const targets = hardlinkTargets(store, root);
  const emitted = new Set<string>();
  const mark = (p: string) => { if (targets.has(p)) emitted.add(p); };
  const deferred: {path: string; entry: Extract<TreeEntry, {kind: 'hardlink'}>}[] = [];
  const put = async (header: Header, body?: Buffer | Readable): Promise<void> => {
    const {raw, ...plain} = header;
    // Bytes tar-stream cannot write (names that are not UTF-8, binary xattr values) go in
    // a pax header of our own, laid out as tar-stream lays out its own pax headers, put on
    // the pack between two entries (tar-stream's entry() takes no body for a pax header).
    if (raw) {
      const block = tarHeaders.encode({name: 'PaxHeader', mode: plain.mode, uid: plain.uid, gid: plain.gid, size: raw.length, mtime: plain.mtime, type: 'pax-header', linkname: plain.linkname ? 'PaxHeader' : undefined, uname: '', gname: '', devmajor: plain.devmajor, devminor: plain.devminor});
      if (!block) throw new TypeError('assertion failed: tar-stream cannot encode a pax header');
      (pack as unknown as {push(b: Buffer): boolean}).push(Buffer.concat([block, raw, Buffer.alloc((512 - (raw.length % 512)) % 512)]));
    }
    await putEntry(plain, body);
  };
  const putEntry = (header: tar.Headers, body?: Buffer | Readable) => new Promise<void>((resolve, reject) => {
    const sink = pack.entry(header, (err?: Error | null) => (err ? reject(err) : resolve()));
    // A reader that goes away destroys the pack and its entry: that is this entry's failure.
    sink.on('error', err => {
      if (body && !Buffer.isBuffer(body)) body.destroy();
      reject(err);
    });
    if (body && !Buffer.isBuffer(body)) body.on('error', err => sink.destroy(err)).pipe(sink as unknown as NodeJS.WritableStream);
    else sink.end(body);
  });
  const header = (name: string, meta: Meta, rest: Partial<Header>): Header =>
    withBytes({name, mode: meta.mode | KEEP_MODE, uid: meta.uid, gid: meta.gid, mtime: new Date(meta.mtime * 1000), uname: '', gname: '', ...paxOf(meta), ...rest}, meta);
  const link = (p: string, e: Extract<TreeEntry, {kind: 'hardlink'}>) =>
    put(header(p, e, {type: 'link', linkname: e.target.replace(/^\/+/, ''), size: 0}));

  const walk = async (tree: Tree, prefix: string): Promise<void> => {
    if (tree.opaque) await put(header(prefix + OPAQUE_MARKER, MARKER_META, {type: 'file', size: 0}));
    // Subdirectories' trees are read SUBTREES_AHEAD at a time, so their index reads wait
    // together rather than one after another (each one's thread hop is slow while the
    // compressor keeps the thread pool busy).
    const dirs = tree.entries.filter(e => e.kind === 'dir');
    const ahead = new Map<Digest, Promise<Tree>>();
    let next = 0;
    const subtree = (d: Digest): Promise<Tree> => {
      while (next < dirs.length && ahead.size < SUBTREES_AHEAD) {
        const t = dirs[next++]!.tree;
        if (ahead.has(t)) continue;
        const read = store.getTree(t, {cache: false}); // read once per export: kept, they would hold the whole layer
        read.catch(() => {}); // reported where it is awaited; never an unhandled rejection
        ahead.set(t, read);
      }
      const read = ahead.get(d) ?? store.getTree(d, {cache: false});
      ahead.delete(d);
      return read;
    };
    for (const e of tree.entries) {
      const p = prefix + e.name;
      switch (e.kind) {
        case 'dir': {
          const sub = await subtree(e.tree);
          // An implicit directory had no entry in the source: none in the export either.
          if (!sub.implicit) await put(header(`${p}/`, sub, {type: 'directory'}));
          await walk(sub, `${p}/`);
          break;
        }
        case 'whiteout':
          await put(header(prefix + WHITEOUT_PREFIX + e.name, MARKER_META, {type: 'file', size: 0}));
          break;
        case 'file': {
          // Both are checked against the digest: a layer tar (and its sha256) is never made of damaged bytes.
          await put(header(p, e, {type: 'file', size: e.size}), await fileBody(store, id, p, e));
          mark(`/${p}`);
          break;
        }
        case 'hardlink':
          if (emitted.has(e.target)) {
            await link(p, e);
            mark(`/${p}`);
          } else deferred.push({path: p, entry: e});
          break;
        case 'symlink':
          await put(header(p, e, {type: 'symlink', linkname: e.target}));
          break;
        case 'char': case 'block':
          await put(header(p, e, {type: e.kind === 'char' ? 'character-device' : 'block-device', devmajor: e.devmajor, devminor: e.devminor}));
          break;
        case 'fifo':
          await put(header(p, e, {type: 'fifo'}));
          break;
      }
    }
  };

  // Trees stored before format 3 did not record implicit directories; their export keeps the old
  // rule for the root (a `./` entry only for metadata other than the default), so a layer
  // stored then exports the same bytes now.
  const explicitRoot = record.format !== undefined && record.format < 3 ? !sameMeta(root, DEFAULT_DIR_META) : !root.implicit;
  if (explicitRoot) await put(header('./', root, {type: 'directory'}));
  await walk(root, '');
  // Links whose target came later in tree order: each after its target, in a fixed order.
  while (deferred.length > 0) {
    const ready = deferred.findIndex(d => emitted.has(d.entry.target));
    if (ready < 0) throw new StoreError('OBJECT_CORRUPT', `layer ${id}: hardlink /${deferred[0]!.path} names ${deferred[0]!.entry.target}, which the layer does not hold`);
    const [{path: p, entry}] = deferred.splice(ready, 1) as [typeof deferred[number]];
    await link(p, entry);
    mark(`/${p}`);
  }
}

/**
 * A file's bytes for its tar entry. The index lookup is synchronous: one per file, by the
 * thousand, and a point read from LevelDB's block cache takes microseconds where the
 * async call's thread hop took ten times that (measured on a 3,000-file layer). Inline
 * bytes come with the lookup; object files are read whole up to READ_WHOLE, else streamed.
 */
async function fileBody(store: Store, id: Digest, p: string, e: Extract<TreeEntry, {kind: 'file'}>): Promise<Buffer | Readable> {
  let v: BlobValue;
  try {
    v = store.blobValueSync(e.blob);
  } catch (err) {
    if (err instanceof StoreError && err.code === 'OBJECT_MISSING') throw new StoreError('OBJECT_MISSING', `layer ${id}: /${p} needs blob ${e.blob}, which is missing`, {cause: err});
    throw err;
  }
  if (!v.file) return checkBlobBytes(e.blob, v.size, v.data);
  return v.size <= READ_WHOLE ? store.readBlob(e.blob) : store.openBlob(e.blob);
}

/** The paths the layer's hardlinks name (a first pass over its trees, which are not kept). */
function hardlinkTargets(store: Store, root: Tree): Set<string> {
  const targets = new Set<string>();
  const visit = (tree: Tree) => {
    for (const e of tree.entries) {
      if (e.kind === 'hardlink') targets.add(e.target);
      else if (e.kind === 'dir') visit(store.getTreeSync(e.tree, {cache: false}));
    }
  };
  visit(root);
  return targets;
}

function sameMeta(a: Meta, b: Meta): boolean {
  return a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.mtime === b.mtime && Object.keys(a.xattrs ?? {}).length === 0;
}

/**
 * A header whose name, link name or xattrs are not all UTF-8 text: its pax records as
 * bytes (`raw`: hdrcharset=BINARY, path, linkpath as GNU tar writes them, then the
 * records of `paxOf` with raw xattr values), and `PaxHeader` in the ustar fields, as
 * tar-stream writes any pax entry. Other headers are returned as they are, so layers of
 * UTF-8 names and text xattrs export exactly the bytes they always did.
 */
function withBytes(h: Header, meta: Meta): Header {
  const xattrs = Object.keys(meta.xattrs ?? {}).sort();
  const binaryNames = hasEscapedBytes(h.name) || (h.linkname !== undefined && h.linkname !== null && hasEscapedBytes(h.linkname));
  if (!binaryNames && xattrs.every(n => !hasEscapedBytes(n) && isUtf8(meta.xattrs![n]!))) return h;
  const records: [Buffer | string, Buffer][] = [];
  if (binaryNames) records.push(['hdrcharset', Buffer.from('BINARY')]);
  records.push(['path', nameToBytes(h.name)]);
  if (h.linkname) records.push(['linkpath', nameToBytes(h.linkname)]);
  for (const [k, v] of Object.entries(h.pax ?? {})) if (!k.startsWith('SCHILY.xattr.')) records.push([k, Buffer.from(v, 'utf8')]);
  for (const n of xattrs) records.push([Buffer.concat([Buffer.from('SCHILY.xattr.'), nameToBytes(n)]), meta.xattrs![n]!]);
  const {pax: _pax, ...rest} = h;
  return {...rest, name: 'PaxHeader', ...(h.linkname ? {linkname: 'PaxHeader'} : {}), raw: encodePaxBytes(records)};
}

/** SCHILY.xattr records, names sorted; values as UTF-8 text (withBytes takes the rest). */
function paxOf(meta: Meta): {pax?: Record<string, string>} {
  const pax: Record<string, string> = {};
  // ustar's 6 octal digits end at 262143: larger ids go in pax records (POSIX pax, "uid").
  if (meta.uid > USTAR_ID_MAX) pax.uid = String(meta.uid);
  if (meta.gid > USTAR_ID_MAX) pax.gid = String(meta.gid);
  for (const n of Object.keys(meta.xattrs ?? {}).sort()) pax[`SCHILY.xattr.${n}`] = meta.xattrs![n]!.toString('utf8');
  return Object.keys(pax).length ? {pax} : {};
}

/** What writing a layer tar produced: the OCI descriptor's digest and size, and the DiffID. */
export interface LayerBlob {
  /** sha256 of the bytes written (compressed), `sha256:<hex>`. */
  readonly digest: string;
  readonly size: number;
  /** sha256 of the uncompressed tar, `sha256:<hex>`. */
  readonly diffId: string;
  readonly compression: Compression;
}

/** Gathers small chunks (tar headers are 512 bytes) into writes of about 1 MiB; big chunks pass as they are. */
const coalesce = definedOnUse(() => class Coalesce extends Transform {
  private chunks: Buffer[] = [];
  private size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: null) => void) {
    if (chunk.length >= PASS_BYTES) { // file data in big chunks: no copy
      this.release();
      this.push(chunk);
    } else {
      this.chunks.push(chunk);
      this.size += chunk.length;
      if (this.size >= COALESCE_BYTES) this.release();
    }
    done();
  }
  override _flush(done: (err?: null) => void) {
    this.release();
    done();
  }
  private release() {
    if (this.size === 0) return;
    this.push(this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks));
    this.chunks = [];
    this.size = 0;
  }
});
const COALESCE_BYTES = 1024 * 1024;
const PASS_BYTES = 32 * 1024;
/**
 * How far the tar may run ahead of its compressor. gzip is one sequential stream and the
 * slowest stage (about 16 MiB/s of a 2 GHz core); writing the tar is 5-10 times faster but
 * uneven (a run of small files, an object file read). With only a chunk of slack, every
 * slow stretch of the tar left gzip waiting (the pipeline took the sum of both, 4.3 s for a
 * 34 MiB layer); with 8 MiB it takes about gzip's own time (2.3 s; gzip alone 2.1 s).
 */
const AHEAD_BYTES = 8 * 1024 * 1024;

/**
 * A layer's tar, compressed, as a stream (for an upload: nothing is written to disk).
 * `diffId()` is the sha256 of the plain tar, valid once the stream has ended. Errors of
 * the export (UNKNOWN_LAYER, OBJECT_MISSING…) fail the stream.
 */
export function compressedLayerStream(store: Store, id: Digest, compression: Compression): {stream: Readable; diffId: () => string} {
  const plain = sha256Tap();
  const out = new PassThrough();
  pipeline(exportLayerStream(store, id), new (coalesce())({readableHighWaterMark: AHEAD_BYTES}), plain, createCompressor(compression), out).catch(err => out.destroy(err as Error));
  let diffId: string | undefined;
  return {stream: out, diffId: () => (diffId ??= plain.digest())};
}

/**
 * Writes a layer's tar to `file` (created; it must not exist), compressed as asked, and
 * returns its digest, size and DiffID. Throws UNKNOWN_LAYER, NO_SPACE, TARGET_EXISTS.
 */
export async function writeLayerTar(store: Store, id: Digest, file: string, compression: Compression = 'gzip'): Promise<LayerBlob> {
  const plain = sha256Tap();
  const packed = sha256Tap();
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new StoreError('TARGET_EXISTS', `${file} already exists`, {cause: err});
    throw err;
  }
  try {
    await pipeline(exportLayerStream(store, id), new (coalesce())({readableHighWaterMark: AHEAD_BYTES}), plain, createCompressor(compression), packed, fh.createWriteStream());
  } catch (err) {
    await fs.rm(file, {force: true});
    rethrowNoSpace(err, file);
  } finally {
    await fh.close().catch(() => {});
  }
  return {digest: packed.digest(), size: packed.size, diffId: plain.digest(), compression};
}

