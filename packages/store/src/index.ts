// The face of @strata/store: what union, the CLI and the repository's scripts use, nothing more.
// The store's own tests import ../src/<folder>/<module>.js for the rest.
export {StoreError, type StoreErrorCode} from './errors.js';
export {type Digest, hashBytes, hashBackend} from './objects/digest.js';
export {type EntryKind, type Tree, type TreeEntry, findEntry, sortEntries, compareNames, emptyTree} from './objects/tree.js';
export {type Image, type ImageConfig, type Platform} from './objects/image.js';
export {type TagRef, parseTag} from './objects/refs.js';
export {Store, type LayerRecord, type ContainerRecord, INLINE_MAX} from './objects/Store.js';
export {UpperForm} from './containers/upperForm.js';
export {WHITEOUT_PREFIX, OPAQUE_MARKER} from './objects/whiteoutNames.js';
export {LayerBuilder} from './import/LayerBuilder.js';
export {type ImportProgress, type ImportResult} from './import/importResult.js';
export {importDirectory} from './import/importDirectory.js';
export {type Compression} from './oci/compress.js';
export {importLayer} from './import/importLayer.js';
export {collectGarbage, type GcReport} from './maintenance/collectGarbage.js';
export {diskUsage, type DiskUsage} from './maintenance/df.js';
export {verifyStore, describe, type VerifyReport} from './maintenance/verify.js';
export {addPin, removePin, listPins, type Pin} from './maintenance/pins.js';
export {repairIndex} from './maintenance/repairIndex.js';
export {exportLayerStream, writeLayerTar} from './oci/exportLayer.js';
export {createCompressor} from './oci/compress.js';
export {MEDIA, hostPlatform} from './oci/ociConfig.js';
export {type ImageProgress, type ImportedImage} from './oci/importImage.js';
export {importOciLayout, exportOciLayout, type ExportedImage} from './oci/ociLayout.js';
export {importDockerArchive, exportDockerArchive} from './oci/dockerArchive.js';
export {importImageFrom} from './oci/importImageFrom.js';
