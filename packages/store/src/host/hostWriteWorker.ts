import {parentPort, workerData} from 'node:worker_threads';
import {ensureHasher} from '../objects/digest.js';
import type {Xattrs} from '../objects/tree.js';
import {type HostEntryJob, type HostWriteFailure, type HostWriteSettings, toFailure, writeHostEntry} from './writeHostEntry.js';

/** One message to a writing thread (HostWriter.ts waits for each reply, so replies need no id). */
export interface WriteRequest {
  readonly jobs: readonly HostEntryJob[];
}
/** Files and bytes written; the first failure stops the batch. */
export interface WriteReply {
  readonly files: number;
  readonly bytes: number;
  readonly failure?: HostWriteFailure;
}

// The entry point of a HostWriter thread: writes each entry it is sent, in order.
if (parentPort) {
  const port = parentPort;
  const settings = workerData as HostWriteSettings;
  await ensureHasher();
  port.on('message', (req: WriteRequest) => {
    let files = 0, bytes = 0;
    for (const cloned of req.jobs) {
      // Buffers arrive as Uint8Arrays: xattr values go back to Buffers for the addon.
      const job = cloned.xattrs ? {...cloned, xattrs: asBuffers(cloned.xattrs)} : cloned;
      try {
        writeHostEntry(job, settings);
      } catch (err) {
        port.postMessage({files, bytes, failure: toFailure(err, settings, job)} satisfies WriteReply);
        return;
      }
      if (job.kind === 'file') { files++; bytes += job.size; }
    }
    port.postMessage({files, bytes} satisfies WriteReply);
  });
}

function asBuffers(x: Xattrs): Xattrs {
  const out: Record<string, Buffer> = {};
  for (const [n, v] of Object.entries(x)) out[n] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return out;
}
