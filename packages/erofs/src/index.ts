export {ErofsError, type ErofsErrorCode} from './errors.js';
export {ErofsTree, type ErofsNode, type ErofsKind, type ErofsMeta, type FileContent} from './ErofsTree.js';
export {writeErofs, erofsToBuffer, writeErofsFile, type ErofsWriteOptions, type ErofsStats} from './writeErofs.js';
