import {createReadStream} from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type {Readable} from 'node:stream';
import type {Digest} from '../objects/digest.js';
import {StoreError, sourceError} from '../errors.js';
import {decompress, sniffCompression} from '../oci/decompress.js';
import {type ImportOptions, type ImportResult, finishImport} from './importResult.js';
import {HardlinkGroups} from './hardlinkGroups.js';
import {LayerBuilder, type LeafEntry, splitLayerPath} from './LayerBuilder.js';
import {extractTar, memberName, paxBytes} from './tarBytes.js';
import {checkTarMember} from './tarChecks.js';
import {untilEndOfArchive} from './tarEnd.js';
import type {Store} from '../objects/Store.js';
import type {Meta, Xattrs} from '../objects/tree.js';
import {OPAQUE_MARKER, WHITEOUT_PREFIX} from '../objects/whiteoutNames.js';

/** Entries up to this size are read into memory whole; larger ones stream to an object file. */
const BUFFER_MAX = 16 * 1024 * 1024;

/** Opens a tar file as a stream of plain tar bytes, undoing gzip, zstd, xz or bzip2. Throws SOURCE_MISSING, BAD_ARCHIVE. */
export async function openTarFile(file: string): Promise<Readable> {
  let head: Buffer;
  try {
    const fh = await fs.open(file, 'r');
    try {
      const {buffer, bytesRead} = await fh.read(Buffer.alloc(6), 0, 6, 0);
      head = buffer.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch (err) {
    throw sourceError(err, file);
  }
  if (head.length === 0) throw new StoreError('BAD_ARCHIVE', `${file} is empty, not a tar archive`);
  return decompress(createReadStream(file), sniffCompression(head));
}

/**
 * Imports a tar stream (already decompressed) as a layer. OCI whiteouts (`.wh.<name>`,
 * `.wh..wh..opq`) become whiteout entries and opaque flags. Refuses (UNSAFE_PATH)
 * absolute names, `..`, and hardlinks to anything but an earlier file of the archive;
 * a truncated or malformed archive is BAD_ARCHIVE. Device nodes are kept as entries and
 * never created on the host. The layer record is written only after the last entry.
 */
export async function importTarStream(store: Store, input: Readable, options: ImportOptions = {}): Promise<ImportResult> {
  // A failed import removes what it wrote (a full disk above all), not only its record.
  return store.undoOnFailure(() => readTar(store, input, options));
}

async function readTar(store: Store, input: Readable, options: ImportOptions): Promise<ImportResult> {
  const before = store.writeCounters();
  const builder = new LayerBuilder();
  const extract = extractTar();
  const framed = untilEndOfArchive(); // bytes after the end-of-archive blocks are ignored, as GNU tar does
  input.on('error', err => framed.destroy(err));
  framed.on('error', err => extract.destroy(err));
  input.pipe(framed).pipe(extract);
  const links = new HardlinkGroups();
  let files = 0, bytes = 0;
  let current: {name: string; size: number} | undefined; // the entry being read, for errors
  try {
    for await (const entry of extract) {
      const h = entry.header;
      checkTarMember(h);
      const name = memberName(h.name), linkname = memberName(h.linkname ?? '');
      current = {name, size: h.size ?? 0};
      const parts = splitLayerPath(name);
      const pax = (h as {pax?: Record<string, string>}).pax;
      // pax uid/gid records carry ids too large for ustar's octal fields (POSIX pax, "uid").
      const meta: Meta = {mode: (h.mode ?? 0o644) & 0o7777, uid: paxId(pax?.uid) ?? h.uid ?? 0, gid: paxId(pax?.gid) ?? h.gid ?? 0, mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000), ...xattrsOf(pax)};
      const base = parts[parts.length - 1];
      if (base?.startsWith(WHITEOUT_PREFIX)) {
        entry.resume();
        const parent = parts.slice(0, -1);
        if (base === OPAQUE_MARKER) builder.opaque(parent);
        else {
          const hidden = [...parent, base.slice(WHITEOUT_PREFIX.length)];
          // OCI: a whiteout applies only to lower layers; an entry this layer adds stays.
          const here = builder.get(hidden);
          if (!here || here.kind === 'whiteout') builder.leaf(splitLayerPath(hidden.join('/')), {kind: 'whiteout'});
        }
        continue;
      }
      switch (h.type) {
        case 'file': case 'contiguous-file': {
          const size = h.size ?? 0;
          let blob: {digest: Digest; size: number};
          if (size <= BUFFER_MAX) {
            const chunks: Buffer[] = [];
            for await (const chunk of entry) chunks.push(chunk as Buffer);
            const data = Buffer.concat(chunks);
            blob = {digest: await store.putBlob(data), size: data.length};
          } else {
            blob = await store.putBlobStream(entry);
          }
          builder.leaf(parts, {kind: 'file', ...meta, size: blob.size, blob: blob.digest});
          files++; bytes += blob.size;
          options.onProgress?.({files, bytes});
          break;
        }
        case 'directory':
          entry.resume();
          builder.dir(parts, meta);
          break;
        case 'symlink':
          entry.resume();
          builder.leaf(parts, {kind: 'symlink', ...meta, target: linkname});
          break;
        case 'link': {
          entry.resume();
          const targetParts = splitLayerPath(linkname);
          const target = builder.get(targetParts);
          if (!target || (target.kind !== 'file' && target.kind !== 'hardlink'))
            throw new StoreError('UNSAFE_PATH', `hardlink "${name}" points to "${linkname}", which is not a file earlier in the archive`);
          const link: LeafEntry = {kind: 'hardlink', ...meta, size: target.size, blob: target.blob, target: `/${targetParts.join('/')}`};
          builder.leaf(parts, link);
          links.add(target, targetParts, link, parts);
          break;
        }
        case 'character-device': case 'block-device':
          entry.resume();
          builder.leaf(parts, {kind: h.type === 'character-device' ? 'char' : 'block', ...meta, devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0});
          break;
        case 'fifo':
          entry.resume();
          builder.leaf(parts, {kind: 'fifo', ...meta});
          break;
        default:
          entry.resume();
          throw new StoreError('UNSUPPORTED_ENTRY', `"${name}" is a tar entry of type ${h.type}, which strata does not import`);
      }
    }
  } catch (err) {
    extract.destroy();
    framed.destroy();
    input.destroy();
    if (err instanceof StoreError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC') throw new StoreError('NO_SPACE', 'the disk is full while importing', {cause: err});
    if ((err as NodeJS.ErrnoException).syscall) throw err; // an I/O failure, not the archive's fault
    // Name the entry: "Stream was destroyed" alone says nothing about which one or why.
    const where = current ? `: it ends inside "${current.name}", which declares ${current.size} bytes` : '';
    throw new StoreError('BAD_ARCHIVE', `the archive is truncated or corrupt${where} (${(err as Error).message})`, {cause: err});
  }
  links.apply(builder); // the content goes to the first path in byte order, as in a directory import
  return finishImport(store, builder, options, before);
}

/** Imports a tar file (plain, gzip or zstd). */
export async function importTarFile(store: Store, file: string, options: ImportOptions = {}): Promise<ImportResult> {
  return importTarStream(store, await openTarFile(file), {...options, source: options.source ?? path.resolve(file)});
}

function paxId(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,10}$/.test(v)) return undefined;
  const n = Number(v);
  return n <= 0xffffffff ? n : undefined;
}

/** SCHILY.xattr records (as GNU tar and star write them): names and values are bytes. */
function xattrsOf(pax: Record<string, string> | null | undefined): {xattrs?: Xattrs} {
  if (!pax) return {};
  const xattrs: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(pax)) if (k.startsWith('SCHILY.xattr.')) xattrs[memberName(k.slice('SCHILY.xattr.'.length))] = paxBytes(v);
  return Object.keys(xattrs).length ? {xattrs} : {};
}
