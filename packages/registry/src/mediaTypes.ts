/** The manifest and index media types of the OCI image-spec and of docker's schema 2. */
export const MANIFEST_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

/**
 * Every type strata reads, for `Accept`: distribution 2.8 answers 404 to a GET whose Accept
 * lacks the stored manifest's type, rather than another type.
 */
export const MANIFEST_ACCEPT: readonly string[] = Object.values(MANIFEST_TYPES);

/** True for an index or docker manifest list (a manifest of manifests). */
export function isIndexType(mediaType: string): boolean {
  return mediaType === MANIFEST_TYPES.ociIndex || mediaType === MANIFEST_TYPES.dockerList;
}
