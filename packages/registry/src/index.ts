export {RegistryError, type RegistryErrorCode} from './errors.js';
export {type Reference, DOCKER_HUB, parseReference, repositoryName, familiarName, formatReference, normalizeTag} from './reference.js';
export {type ImageRef, type Transport, parseImageRef} from './imageRef.js';
export {type Credentials, type CredentialSources, authFilePaths, lookupCredentials, storeCredentials, removeCredentials, authKeyOf} from './credentials.js';
export {type RetryPolicy, DEFAULT_RETRY} from './retry.js';
export {RegistryClient, type RegistryClientOptions, type Manifest, type BlobReadOptions, type BlobUploadOptions, MANIFEST_MAX} from './RegistryClient.js';
export {MANIFEST_TYPES, MANIFEST_ACCEPT, isIndexType} from './mediaTypes.js';
