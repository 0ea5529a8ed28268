/** Codes are the contract; messages may change. */
export type RegistryErrorCode =
  | 'BAD_REFERENCE'      // an image reference that the docker reference grammar refuses
  | 'UNREACHABLE'        // the registry did not answer (refused, reset, DNS, timeout) after retries
  | 'TLS_REQUIRED'       // the registry speaks plain HTTP and --tls-verify=false was not given
  | 'UNAUTHORIZED'       // the registry or its token server refused the credentials (or wants some)
  | 'DENIED'             // authenticated, but not allowed to do this
  | 'MANIFEST_UNKNOWN'   // no manifest by that tag or digest
  | 'BLOB_UNKNOWN'       // no blob by that digest in that repository
  | 'NAME_UNKNOWN'       // no such repository
  | 'DIGEST_MISMATCH'    // bytes that do not hash to the digest they were asked for by
  | 'BAD_RESPONSE'       // an answer the protocol does not allow (a 200 to a Range request, a huge manifest)
  | 'REGISTRY_ERROR'     // any other error status the registry answered with
  | 'BAD_AUTHFILE'       // an auth file that is not the JSON it should be
  | 'CREDENTIAL_HELPER'  // a docker-credential-* helper that is missing or failed
  | 'NOT_LOGGED_IN';     // logout of a registry that has no stored credentials

export class RegistryError extends Error {
  override name = 'RegistryError';
  readonly code: RegistryErrorCode;
  /** The HTTP status that caused it, when one did. */
  readonly status?: number;
  constructor(code: RegistryErrorCode, message: string, options?: ErrorOptions & {status?: number}) {
    super(message, options);
    this.code = code;
    if (options?.status !== undefined) this.status = options.status;
  }
}
