import {parentPort, workerData} from 'node:worker_threads';
import {ensureHasher} from '../objects/digest.js';
import {type BlobDirs, type FileBlob, type FileStamp, storeFileSync} from '../objects/storeFileSync.js';

/**
 * One message to a hashing thread: files to store, and what comes back. A thread has one
 * request at a time (FilePool.ts waits for each reply), so replies need no id.
 */
export interface HashRequest {
  readonly files: readonly {readonly path: string; readonly size: number; readonly stamp?: FileStamp}[];
}
/** A failure keeps the fields of Node's fs error (code, syscall, path), so the CLI can tell whose path it was. */
export type HashOutcome = FileBlob | {readonly error: {readonly code?: string; readonly syscall?: string; readonly path?: string; readonly message: string}};
export interface HashReply {
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
        outcomes.push({error: {...(e.code ? {code: e.code} : {}), ...(e.syscall ? {syscall: e.syscall} : {}), ...(e.path ? {path: e.path} : {}), message: e.message}});
      }
    }
    port.postMessage({outcomes} satisfies HashReply, transfer);
  });
}
