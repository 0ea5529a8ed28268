import type {FileStamp} from '../objects/storeFileSync.js';

/**
 * One message to a hashing thread: files to store, and what comes back. A thread answers
 * its requests in order (FilePool.ts matches replies that way), so replies need no id.
 * Packed in two values, not an object per file: cloning 64 small objects per message was
 * a tenth of the main thread's time in an import of small files.
 */
export interface HashRequest {
  /** The files' paths, each ended by a NUL (no path holds one). */
  readonly paths: string;
  /** Per file, four numbers: its size, then its stamp's size, mtimeMs, ctimeMs (NaN: no stamp). */
  readonly numbers: Float64Array;
}

/** Packs files into a request. */
export function packRequest(files: readonly {readonly path: string; readonly size: number; readonly stamp?: FileStamp}[]): HashRequest {
  const numbers = new Float64Array(files.length * 4);
  let paths = '';
  files.forEach((f, i) => {
    paths += `${f.path}\0`;
    numbers[i * 4] = f.size;
    numbers[i * 4 + 1] = f.stamp ? f.stamp.size : NaN;
    numbers[i * 4 + 2] = f.stamp ? f.stamp.mtimeMs : NaN;
    numbers[i * 4 + 3] = f.stamp ? f.stamp.ctimeMs : NaN;
  });
  return {paths, numbers};
}

/** The files of a request, in order. */
export function unpackRequest(req: HashRequest): {path: string; size: number; stamp?: FileStamp}[] {
  const paths = req.paths.split('\0');
  const out: {path: string; size: number; stamp?: FileStamp}[] = [];
  for (let i = 0; i < req.numbers.length / 4; i++) {
    const n = req.numbers;
    out.push(Number.isNaN(n[i * 4 + 1]!)
      ? {path: paths[i]!, size: n[i * 4]!}
      : {path: paths[i]!, size: n[i * 4]!, stamp: {size: n[i * 4 + 1]!, mtimeMs: n[i * 4 + 2]!, ctimeMs: n[i * 4 + 3]!}});
  }
  return out;
}
