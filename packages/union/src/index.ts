export {UnionError, type UnionErrorCode} from './errors.js';
export {type ViewPath, parseViewPath, childPath} from './viewPath.js';
export {type ViewEntry, type ViewKind} from './ViewEntry.js';
export {UnionView, type WriteOptions} from './UnionView.js';
export {flattenLayers} from './flatten.js';
export {createContainer, resolveContainer, removeContainer, openContainerView, openImageView, resolveView, type ResolvedView} from './containers.js';
export {diffViews, type Change, type ChangeKind} from './diff.js';
export {commitContainer, type CommitResult} from './commit.js';
export {checkout, type CheckoutResult} from './checkout.js';
