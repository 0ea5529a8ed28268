import {availableParallelism} from 'node:os';
import * as fs from 'node:fs';
import {Worker} from 'node:worker_threads';
import type {HashOutcome, HashReply, HashRequest} from './hashWorker.js';
import {type BlobDirs, type FileBlob, type FileStamp, placeStaged, storeFileSync} from '../objects/storeFileSync.js';

/** Files sent to a thread per message: amortises the message cost over small files. */
const BATCH_FILES = 64;
const BATCH_BYTES = 8 * 1024 * 1024;
/** Below this much work, starting threads (~30 ms) costs more than it saves. */
const THREADS_MIN_FILES = 256;
const THREADS_MIN_BYTES = 32 * 1024 * 1024;

export interface FileJob {
  readonly path: string;
  readonly size: number;
  /** What the walk saw; a file that no longer matches it after the read is SOURCE_CHANGED. */
  readonly stamp?: FileStamp;
}

/**
 * Stores many host files as blobs on every core: each thread reads, hashes and writes
 * object files with synchronous calls, which here cost a fraction of Node's async fs
 * calls (docs/benchmarks.md, "import"). New object files are made durable together and
 * only then put in place (`placeStaged`). Small jobs run in the calling thread.
 * Returns each job's blob, in job order, once every object file is in place; the caller
 * indexes them (the main thread alone holds the LevelDB handle). An inline blob's bytes
 * are handed to `onStored` alone and left out of the result (`data` absent, size at most
 * `dirs.inlineMax`): the caller indexes those as they come, so memory holds a digest and a
 * size per file, not every small file's bytes until the end. `toError` names a failed
 * file; the first failure stops the run, and staged files are removed.
 */
export async function storeFiles(
  jobs: readonly FileJob[], dirs: BlobDirs,
  toError: (job: FileJob, err: {code?: string; message: string}) => Error,
  onStored?: (job: FileJob, blob: FileBlob) => void,
): Promise<FileBlob[]> {
  const staging: BlobDirs = {...dirs, stage: true};
  const results: FileBlob[] = new Array(jobs.length);
  try {
    const total = jobs.reduce((n, j) => n + j.size, 0);
    if (jobs.length < THREADS_MIN_FILES && total < THREADS_MIN_BYTES) {
      jobs.forEach((job, i) => {
        try {
          results[i] = storeFileSync(job.path, job.size, staging, job.stamp);
        } catch (err) {
          throw toError(job, err as NodeJS.ErrnoException);
        }
        onStored?.(job, results[i]!);
        results[i] = withoutData(results[i]!);
      });
    } else {
      await onThreads(jobs, staging, results, toError, onStored);
    }
    placeStaged(dirs.dir, results.filter((r): r is FileBlob & {staged: string} => r.staged !== undefined));
  } catch (err) {
    for (const r of results) if (r?.staged) fs.rmSync(r.staged, {force: true});
    throw err;
  }
  return results;
}

async function onThreads(
  jobs: readonly FileJob[], dirs: BlobDirs, results: FileBlob[],
  toError: (job: FileJob, err: {code?: string; message: string}) => Error,
  onStored?: (job: FileJob, blob: FileBlob) => void,
): Promise<void> {
  const batches: number[][] = [];
  let batch: number[] = [], bytes = 0;
  jobs.forEach((job, i) => {
    batch.push(i);
    bytes += job.size;
    if (batch.length >= BATCH_FILES || bytes >= BATCH_BYTES) { batches.push(batch); batch = []; bytes = 0; }
  });
  if (batch.length) batches.push(batch);

  const threads = Math.max(1, Math.min(availableParallelism(), 8, batches.length));
  const workers = Array.from({length: threads}, () => new Worker(new URL('./hashWorker.js', import.meta.url), {workerData: dirs}));
  let next = 0;
  let failed: Error | undefined;
  try {
    await Promise.all(workers.map(async worker => {
      while (!failed && next < batches.length) {
        const mine = batches[next++]!;
        const outcomes = await ask(worker, {files: mine.map(i => jobs[i]!)});
        mine.forEach((jobIndex, k) => {
          const o = outcomes[k]!;
          if ('error' in o) failed ??= toError(jobs[jobIndex]!, o.error);
          else { onStored?.(jobs[jobIndex]!, o); results[jobIndex] = withoutData(o); }
        });
      }
    }));
  } finally {
    await Promise.all(workers.map(w => w.terminate()));
  }
  if (failed) throw failed;
}

function withoutData(blob: FileBlob): FileBlob {
  return blob.data ? {digest: blob.digest, size: blob.size} : blob;
}

function ask(worker: Worker, req: HashRequest): Promise<readonly HashOutcome[]> {
  return new Promise((resolve, reject) => {
    const cleanup = () => { worker.off('message', onMessage); worker.off('error', onError); };
    const onMessage = (reply: HashReply) => { cleanup(); resolve(reply.outcomes); };
    const onError = (err: Error) => { cleanup(); reject(err); };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.postMessage(req);
  });
}
