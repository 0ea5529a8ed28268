import {Option, UsageError} from 'clipanion';
import type {Credentials, RegistryClient} from '@strata/registry';
import {BaseCommand} from '../BaseCommand.js';

/**
 * What the commands that talk to a registry share: TLS (`--tls-verify=false` for a
 * plain-HTTP or self-signed registry) and credentials (`--creds`, else `--authfile`, else
 * the auth files and credential helpers containers-auth.json(5) names), as skopeo takes them.
 */
export abstract class RegistryCommand extends BaseCommand {
  tlsVerify = Option.String('--tls-verify', {tolerateBoolean: true, description: 'verify the registry\'s TLS certificate (default true); false also allows plain HTTP'});
  creds = Option.String('--creds', {description: 'USER:PASSWORD for the registry (instead of the auth files)'});
  authfile = Option.String('--authfile', {description: 'the auth file to read credentials from (default: $REGISTRY_AUTH_FILE, then the containers and docker auth files)'});

  /** `--tls-verify` as a boolean. A value other than true/false is a usage error. */
  verifyTls(): boolean {
    const v = this.tlsVerify;
    if (v === undefined || v === true || v === 'true') return true;
    if (v === 'false') return false;
    throw new UsageError(`--tls-verify must be true or false, not "${String(v)}"`);
  }

  /** `--creds USER:PASS` parsed. A value without a colon is a usage error. */
  givenCredentials(): {username: string; password: string} | undefined {
    if (this.creds === undefined) return undefined;
    const colon = this.creds.indexOf(':');
    if (colon <= 0) throw new UsageError('--creds must be USER:PASSWORD');
    return {username: this.creds.slice(0, colon), password: this.creds.slice(colon + 1)};
  }

  /** A client of `domain` with this command's TLS and credentials (looked up only if the registry asks). */
  async client(domain: string, repo: string): Promise<RegistryClient> {
    const {RegistryClient, lookupCredentials} = await import('@strata/registry');
    const tlsVerify = this.verifyTls();
    const given = this.givenCredentials();
    const authfile = this.authfile;
    const credentials: Credentials | (() => Promise<Credentials | undefined>) = given ?? (() => lookupCredentials(domain, repo, authfile !== undefined ? {authfile} : {}));
    return new RegistryClient(domain, {tlsVerify, credentials, userAgent: 'strata'});
  }
}
