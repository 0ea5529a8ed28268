import {parentPort, workerData} from 'node:worker_threads';
import {ensureHasher} from '../objects/digest.js';
import {type BlobDirs, type FileBlob, storeFileSync} from '../objects/storeFileSync.js';
import {type HashRequest, unpackRequest} from './hashRequest.js';

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
    for (const f of unpackRequest(req)) {
      try {
        const blob = storeFileSync(f.path, f.size, dirs, f.stamp);
        if (blob.value) transfer.push(blob.value.buffer as ArrayBuffer); // its own ArrayBuffer: moved to the main thread, not copied
        outcomes.push(blob);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        outcomes.push({error: {...(e.code ? {code: e.code} : {}), ...(e.syscall ? {syscall: e.syscall} : {}), ...(e.path ? {path: e.path} : {}), message: e.message}});
      }
    }
    port.postMessage({outcomes} satisfies HashReply, transfer);
  });
}
