import {Command, Option, UsageError} from 'clipanion';
import {RegistryCommand} from './RegistryCommand.js';

/** A registry argument: `HOST[:PORT]`, optionally as `docker://HOST` or a URL; Docker Hub's names are docker.io. */
export async function registryArgument(s: string): Promise<string> {
  const {authKeyOf} = await import('@strata/registry');
  const host = s.replace(/^(docker:\/\/|https?:\/\/)/, '').replace(/\/.*$/, '');
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d+)?$/.test(host)) throw new UsageError(`"${s}" is not a registry HOST[:PORT]`);
  return authKeyOf(host);
}

export class LoginCommand extends RegistryCommand {
  static override paths = [['login']];
  static override usage = Command.Usage({
    category: 'Registries',
    description: 'log in to a registry',
    details: `
      Checks USER and PASSWORD against REGISTRY (\`HOST[:PORT]\`) and stores them in the first auth file: \`--authfile\`, else \`$REGISTRY_AUTH_FILE\`, else \`$XDG_RUNTIME_DIR/containers/auth.json\`, the file podman and skopeo write. The user comes from \`--username\` and the password from \`--password-stdin\` (safer: it stays out of the process list) or \`--password\`; or both from \`--creds USER:PASSWORD\`.
    `,
    examples: [
      ['Log in with the password read from a file on stdin', '$0 login quay.io --username me --password-stdin < token.txt'],
      ['Log in to a plain-HTTP registry with USER:PASSWORD', '$0 login localhost:5000 --creds me:secret --tls-verify=false'],
    ],
  });

  registry = Option.String({name: 'REGISTRY'});
  username = Option.String('--username,-u', {description: 'the user name'});
  password = Option.String('--password,-p', {description: 'the password (visible to other users in the process list; prefer --password-stdin)'});
  passwordStdin = Option.Boolean('--password-stdin', false, {description: 'read the password from stdin'});

  async run(): Promise<number> {
    const registry = await registryArgument(this.registry);
    const given = this.givenCredentials();
    if (given) {
      if (this.username !== undefined || this.password !== undefined || this.passwordStdin) throw new UsageError('give --creds or --username with a password, not both');
      return this.login(registry, given);
    }
    if (this.username === undefined) throw new UsageError('login needs --username (or --creds USER:PASSWORD)');
    if (this.password !== undefined && this.passwordStdin) throw new UsageError('give --password or --password-stdin, not both');
    let password = this.password;
    if (this.passwordStdin) {
      let text = '';
      for await (const chunk of this.stdin) text += String(chunk);
      password = text.replace(/\r?\n$/, '');
    }
    if (password === undefined) throw new UsageError('login needs --password-stdin or --password');
    return this.login(registry, {username: this.username, password});
  }

  /** Checks the credentials with the registry, then stores them. */
  private async login(registry: string, creds: {username: string; password: string}): Promise<number> {
    const {RegistryClient, storeCredentials} = await import('@strata/registry');
    await new RegistryClient(registry, {tlsVerify: this.verifyTls(), credentials: creds}).checkCredentials();
    const file = await storeCredentials(registry, creds, this.authfile !== undefined ? {authfile: this.authfile} : {});
    this.context.stdout.write(`logged in to ${registry} as ${creds.username} (${file})\n`);
    return 0;
  }
}

export class LogoutCommand extends RegistryCommand {
  static override paths = [['logout']];
  static override usage = Command.Usage({
    category: 'Registries',
    description: 'remove the stored credentials of a registry',
    details: 'Removes REGISTRY\'s entry from every auth file strata reads (or from `--authfile` alone). A registry with no stored credentials is an error.',
    examples: [['Log out of a registry', '$0 logout quay.io']],
  });

  registry = Option.String({name: 'REGISTRY'});

  async run(): Promise<number> {
    const registry = await registryArgument(this.registry);
    const {removeCredentials} = await import('@strata/registry');
    const files = await removeCredentials(registry, this.authfile !== undefined ? {authfile: this.authfile} : {});
    this.context.stdout.write(`logged out of ${registry} (${files.join(', ')})\n`);
    return 0;
  }
}
