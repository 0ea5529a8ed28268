import {availableParallelism} from 'node:os';
import {Worker} from 'node:worker_threads';
import type {HashOutcome, HashReply, HashRequest} from './hashWorker.js';
import {type BlobDirs, type FileBlob, storeFileSync} from './storeFileSync.js';

/** Files sent to a thread per message: amortises the message cost over small files. */
const BATCH_FILES = 64;
const BATCH_BYTES = 8 * 1024 * 1024;
/** Below this much work, starting threads (~30 ms) costs more than it saves. */
const THREADS_MIN_FILES = 256;
const THREADS_MIN_BYTES = 32 * 1024 * 1024;

export interface FileJob {
  readonly path: string;
  readonly size: number;
}

/**
 * Stores many host files as blobs on every core: each thread reads, hashes and (for large
 * blobs) writes object files with synchronous calls, which here cost a fraction of
 * Node's async fs calls (`npm run bench -- import`, docs/benchmarks.md). The caller indexes
 * each result in the main thread, which alone holds the LevelDB handle. Small jobs run
 * in the calling thread. `onResult` is called once per file, in no particular order;
 * the first error stops the run and is thrown after the threads are stopped.
 */
export async function storeFiles(
  jobs: readonly FileJob[], dirs: BlobDirs,
  onResult: (job: FileJob, blob: FileBlob) => void | Promise<void>,
  toError: (job: FileJob, err: {code?: string; message: string}) => Error,
): Promise<void> {
  const total = jobs.reduce((n, j) => n + j.size, 0);
  if (jobs.length < THREADS_MIN_FILES && total < THREADS_MIN_BYTES) {
    for (const job of jobs) {
      let blob: FileBlob;
      try {
        blob = storeFileSync(job.path, job.size, dirs);
      } catch (err) {
        throw toError(job, err as NodeJS.ErrnoException);
      }
      await onResult(job, blob);
    }
    return;
  }

  const batches: FileJob[][] = [];
  let batch: FileJob[] = [], bytes = 0;
  for (const job of jobs) {
    batch.push(job);
    bytes += job.size;
    if (batch.length >= BATCH_FILES || bytes >= BATCH_BYTES) { batches.push(batch); batch = []; bytes = 0; }
  }
  if (batch.length) batches.push(batch);

  const threads = Math.max(1, Math.min(availableParallelism(), 8, batches.length));
  const workers = Array.from({length: threads}, () => new Worker(new URL('./hashWorker.js', import.meta.url), {workerData: dirs}));
  let next = 0;
  let failed: Error | undefined;
  try {
    await Promise.all(workers.map(async worker => {
      while (!failed && next < batches.length) {
        const id = next++;
        const mine = batches[id]!;
        const outcomes = await ask(worker, {id, files: mine});
        for (let i = 0; i < mine.length && !failed; i++) {
          const o = outcomes[i]!;
          if ('error' in o) failed = toError(mine[i]!, o.error);
          else await onResult(mine[i]!, o);
        }
      }
    }));
  } finally {
    await Promise.all(workers.map(w => w.terminate()));
  }
  if (failed) throw failed;
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
