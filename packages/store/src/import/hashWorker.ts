import {parentPort, workerData} from 'node:worker_threads';
import {ensureHasher} from '../objects/digest.js';
import {type BlobDirs, type FileBlob, type FileStamp, storeFileSync} from '../objects/storeFileSync.js';

/** One message to a hashing thread: files to store, and what comes back. */
export interface HashRequest {
  readonly id: number;
  readonly files: readonly {readonly path: string; readonly size: number; readonly stamp?: FileStamp}[];
}
export type HashOutcome = FileBlob | {readonly error: {readonly code?: string; readonly message: string}};
export interface HashReply {
  readonly id: number;
  readonly outcomes: readonly HashOutcome[];
}

// The entry point of a FilePool thread (FilePool.ts): stores each file it is sent, in order.
if (parentPort) {
  const port = parentPort;
  const dirs = workerData as BlobDirs;
  await ensureHasher();
  port.on('message', (req: HashRequest) => {
    const outcomes: HashOutcome[] = [];
    const transfer: ArrayBuffer[] = [];
    for (const f of req.files) {
      try {
        const blob = storeFileSync(f.path, f.size, dirs, f.stamp);
        if (blob.data) {
          const copy = new Uint8Array(blob.data); // its own ArrayBuffer, moved to the main thread without a copy
          transfer.push(copy.buffer);
          outcomes.push({...blob, data: copy});
        } else outcomes.push(blob);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        outcomes.push({error: {...(e.code ? {code: e.code} : {}), message: e.message}});
      }
    }
    port.postMessage({id: req.id, outcomes} satisfies HashReply, transfer);
  });
}
