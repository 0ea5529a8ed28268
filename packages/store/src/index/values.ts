/**
 * The codecs of the index's values (docs/format.md, "The index (LevelDB)"), beside the
 * keys (keys.ts). Trees and images are stored as their canonical encodings (objects/tree.ts,
 * objects/image.ts); everything else is one of these.
 */

/** Tag bytes of a blob value: its bytes follow, or the size of its object file does. */
const BLOB_INLINE = 0;
const BLOB_FILE = 1;
const BLOB_FILE_LENGTH = 9;

/** A blob as the index records it. `data` is the blob's bytes when they are inline. */
export type BlobValue = {readonly size: number; readonly file: false; readonly data: Buffer} | {readonly size: number; readonly file: true};

/** `00` + the bytes: a blob kept inline. */
export function inlineBlobValue(data: Uint8Array): Buffer {
  return Buffer.concat([Buffer.of(BLOB_INLINE), data]);
}

/**
 * A blob's bytes read into `buf` from offset 1 on (`n` of them) made its inline value in
 * place: the tag goes in byte 0, so the value needs no copy (a hashing thread reads each
 * small file this way and hands the value over as it is).
 */
export function inlineBlobValueAt(buf: Uint8Array, n: number): Uint8Array {
  buf[0] = BLOB_INLINE;
  return buf.subarray(0, 1 + n);
}

/** `01` + its size (u64 BE): a blob kept as an object file. */
export function fileBlobValue(size: number): Buffer {
  const value = Buffer.alloc(BLOB_FILE_LENGTH);
  value.writeUInt8(BLOB_FILE, 0);
  value.writeBigUInt64BE(BigInt(size), 1);
  return value;
}

/** Reads a blob value; undefined when it is neither form (a damaged entry, for verify to name). */
export function decodeBlobValue(v: Buffer): BlobValue | undefined {
  if (v[0] === BLOB_INLINE) return {size: v.length - 1, file: false, data: v.subarray(1)};
  if (v[0] === BLOB_FILE && v.length === BLOB_FILE_LENGTH) return {size: Number(v.readBigUInt64BE(1)), file: true};
  return undefined;
}

/** A record (layer, container, pin, lease) as JSON. */
export function encodeRecord(record: unknown): Buffer {
  return Buffer.from(JSON.stringify(record), 'utf8');
}

/** Reads a record written by `encodeRecord`. Throws SyntaxError on a damaged one (verify uses `tryDecodeRecord`). */
export function decodeRecord<T>(v: Buffer): T {
  return JSON.parse(v.toString('utf8')) as T;
}

/** `decodeRecord`, or undefined when the bytes are not JSON. */
export function tryDecodeRecord<T>(v: Buffer): T | undefined {
  try {
    return decodeRecord<T>(v);
  } catch {
    return undefined;
  }
}

/** A value that is one name or digest (tag -> image, flat -> tree, container name -> id) as UTF-8 text. */
export function encodeText(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

export function decodeText<T extends string = string>(v: Buffer): T {
  return v.toString('utf8') as T;
}
