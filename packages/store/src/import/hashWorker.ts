import {parentPort, workerData} from 'node:worker_threads';
import {ensureHasher, preferNativeHash} from '../objects/digest.js';
import {type BlobDirs, type FileBlob, ReadBuffer} from '../objects/storeFileSync.js';
import {UpperForm} from '../containers/upperForm.js';
import {type HashRequest, unpackRequest} from './hashRequest.js';
import {type Listing, type ListingSettings, describeDirectory, errorData, failedListing} from './describeDirectory.js';

/** A failure keeps the fields of Node's fs error (code, syscall, path), so the CLI can tell whose path it was. */
export type HashOutcome = FileBlob | {readonly error: {readonly code?: string; readonly syscall?: string; readonly path?: string; readonly message: string}};
export interface HashReply {
  readonly outcomes: readonly HashOutcome[];
}

/** A directory to list and describe (describeDirectory.ts), its first files hashed. */
export interface ListRequest {
  readonly list: {readonly dir: string; readonly layerPath: string};
}
export interface ListReply {
  readonly listing: Listing;
}

/** What a thread posts once, when it has loaded its code and takes requests (it answers none with it). */
export interface ReadyReply {
  readonly started: true;
}

/** What a thread is started with: where blobs go, and how to read the import's directories. */
export interface PoolSettings {
  readonly dirs: BlobDirs;
  readonly listing: {readonly whiteoutNames: boolean; readonly readMax?: number; readonly upper?: {readonly storeDir: string; readonly userxattr: boolean}};
}

// The entry point of a FilePool thread (FilePool.ts): stores each file it is sent, lists
// each directory it is sent, in order.
if (parentPort) {
  const port = parentPort;
  const {dirs, listing} = workerData as PoolSettings;
  const settings: ListingSettings = {
    whiteoutNames: listing.whiteoutNames,
    ...(listing.readMax !== undefined ? {readMax: listing.readMax} : {}),
    ...(listing.upper ? {upper: new UpperForm(listing.upper.storeDir, listing.upper.userxattr)} : {}),
  };
  const reads = new ReadBuffer(dirs.inlineMax);
  await ensureHasher();
  preferNativeHash(); // a thread hashes thousands of files: the addon from the first (digest.ts)
  port.on('message', (req: HashRequest | ListRequest) => {
    if ('list' in req) {
      let listing: Listing;
      try {
        listing = describeDirectory(req.list.dir, req.list.layerPath, settings, dirs);
      } catch (err) {
        listing = failedListing(errorData(err));
      }
      port.postMessage({listing} satisfies ListReply, [listing.entries.buffer as ArrayBuffer, listing.values.buffer as ArrayBuffer]);
      return;
    }
    const outcomes: HashOutcome[] = [];
    const transfer: ArrayBuffer[] = [];
    for (const f of unpackRequest(req)) {
      try {
        const blob = reads.store(f.path, f.size, dirs, f.stamp);
        if (blob.value) transfer.push(blob.value.buffer as ArrayBuffer); // its own ArrayBuffer: moved to the main thread, not copied
        outcomes.push(blob);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        outcomes.push({error: {...(e.code ? {code: e.code} : {}), ...(e.syscall ? {syscall: e.syscall} : {}), ...(e.path ? {path: e.path} : {}), message: e.message}});
      }
    }
    port.postMessage({outcomes} satisfies HashReply, transfer);
  });
  port.postMessage({started: true} satisfies ReadyReply);
}
