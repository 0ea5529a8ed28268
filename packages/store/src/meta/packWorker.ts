import {parentPort} from 'node:worker_threads';
import type {Digest} from '../objects/digest.js';
import {ensureHasher} from '../objects/digest.js';
import {StoreError} from '../errors.js';
import {type PackBatch, type PackReply, type PackRequest, checkedBlobs, fsyncFile} from './packSink.js';
import {writePack} from './packs.js';

// The entry point of a pack thread (packSink.ts): checks each blob of the batches it is
// sent against its digest as they come, then writes the pack and its list, fsyncs both,
// and answers once with the pack's digest or the failure.
if (parentPort) {
  const port = parentPort;
  await ensureHasher();
  const blobs = new Map<Digest, Buffer>();
  let failure: PackReply | undefined;
  port.on('message', (req: PackRequest) => {
    try {
      if ('batch' in req) {
        if (!failure) for (const [d, data] of checkedBlobs(req.batch as PackBatch)) blobs.set(d, data);
        return;
      }
      if (failure) {
        port.postMessage(failure);
        return;
      }
      const {tmpPack, tmpList} = req.finish;
      const pack = writePack(blobs, tmpPack, tmpList);
      fsyncFile(tmpList);
      fsyncFile(tmpPack);
      port.postMessage({pack} satisfies PackReply);
    } catch (err) {
      const e = err as Error & {code?: string};
      failure = {failure: {message: e.message, store: err instanceof StoreError, ...(typeof e.code === 'string' ? {code: e.code} : {})}};
      if ('finish' in req) port.postMessage(failure);
    }
  });
}
