import {Builtins, Cli, type BaseContext, type Command, type CommandClass, formatMarkdownish} from 'clipanion';
import {cacheKey, groupFor, printGroupHelp, routable, unknownCommand, type Paths} from './commandPaths.js';
import {EXIT} from './exitCodes.js';

export {EXIT};
export {containerFirst} from './commandPaths.js';

/**
 * clipanion's Cli, with parse errors sent to stderr (stdout stays clean for --json) and
 * given exit code 2, as usage errors are by convention.
 */
export class StrataCli extends Cli<BaseContext> {
  /**
   * Told, before it runs, what runs: a command's path joined by `-` (`ps`, `image-inspect`),
   * or `help` for help, a usage error or the version. The bundle's loader names the code
   * caches it keeps per command by it (packages/cli/bin/strata.js).
   */
  onRun?: (key: string) => void;

  /** Every command's paths, registered or not (else the registered ones'): what tells a group (`strata image`) from a typo. */
  commandPaths?: Paths;

  // @ts-expect-error clipanion overloads run() on a void context; strata always passes one
  override async run(input: Command<BaseContext> | string[], userContext: Partial<BaseContext> = {}): Promise<number> {
    if (!Array.isArray(input)) return super.run(input, userContext);
    const context = {...Cli.defaultContext, ...userContext};
    const argv = routable(input);
    const paths = this.commandPaths ?? [...this.registrations.keys()].flatMap(c => c.paths ?? []);
    const group = groupFor(argv, paths);
    if (group) {
      this.onRun?.('help');
      // `strata`, `strata --help`, `strata image --help`, `strata fs`: the commands of that group.
      return printGroupHelp(argv, this.groupHelp(group), context);
    }
    const unknown = unknownCommand(argv, paths);
    if (unknown !== undefined) {
      this.onRun?.('help');
      context.stderr.write(unknown);
      return EXIT.usage;
    }
    let command: Command<BaseContext>;
    try {
      command = this.process(argv, context);
    } catch (error) {
      this.onRun?.('help');
      context.stderr.write(this.error(error, {colored: this.enableColors ?? context.colorDepth > 1}));
      return EXIT.usage;
    }
    this.onRun?.(cacheKey((command.constructor as {paths?: string[][]}).paths?.[0]) ?? 'help');
    return super.run(command, context);
  }

  /**
   * Whether argv parses to a command of those registered (help and the version included),
   * as run() would route it: no group help, no unknown command, no parse error.
   */
  parses(input: readonly string[]): boolean {
    const argv = routable(input);
    const paths = this.commandPaths ?? [...this.registrations.keys()].flatMap(c => c.paths ?? []);
    if (groupFor(argv, paths) !== undefined || unknownCommand(argv, paths) !== undefined) return false;
    try {
      this.process(argv, {...Cli.defaultContext});
      return true;
    } catch {
      return false;
    }
  }

  /**
   * clipanion's help, with option values named (`--store DIR`, not `--store #0`: clipanion
   * numbers an option's values, and strata's options take one each).
   */
  override usage(...args: Parameters<Cli<BaseContext>['usage']>): string {
    const text = super.usage(...args).replace(/(-[\w-]+(?:,-[\w-]+)*) #0/g, (_, names: string) => `${names} ${valueName(names)}`);
    // The option lines ("  --store DIR    the store directory") aligned again after the renaming.
    const option = /^  (-\S+(?: \S+)?) {2,}(\S.*)$/;
    const width = Math.max(0, ...text.split('\n').map(l => option.exec(l)?.[1]!.length ?? 0));
    return text.split('\n').map(l => {
      const m = option.exec(l);
      return m ? `  ${m[1]!.padEnd(width)}  ${m[2]}` : l;
    }).join('\n');
  }

  /**
   * The commands whose path starts with `group` (every command for `[]`), by category in
   * the order strata lists them: each command's usage (positionals) and description.
   */
  groupHelp(group: readonly string[]): string {
    const prefix = ['strata', ...group].join(' ');
    const defs = this.summaries().filter(d => d.path === prefix || d.path.startsWith(`${prefix} `));
    const categories = [...new Set(defs.map(d => d.category?.trim() ?? ''))];
    const lines = [`strata - ${this.binaryVersion ?? ''}`, '', `  $ ${prefix} <command>${group.length === 0 ? '' : ' ...'}`, ''];
    for (const category of categories) {
      if (category) lines.push(category, '');
      for (const d of defs.filter(x => (x.category?.trim() ?? '') === category)) lines.push(`  ${d.usage.trim()}`, `    ${d.description?.trim() ?? ''}`, '');
    }
    lines.push('Every command takes --store DIR (else $STRATA_STORE, else $XDG_DATA_HOME/strata).', `Run "${prefix === 'strata' ? 'strata COMMAND' : `${prefix} COMMAND`} --help" for a command's options and examples.`, '');
    return lines.join('\n');
  }

  /**
   * Each documented command's path, usage, category and description, as `definitions()`
   * gives them, without what group help does not show (`definitions()` also formats every
   * command's details and examples: a few milliseconds of `strata --help`).
   */
  private summaries(): {path: string; usage: string; category?: string; description?: string}[] {
    const plain = (text: string | undefined) => text === undefined ? undefined : formatMarkdownish(text, {format: this.format(false), paragraphs: false});
    return [...this.registrations].flatMap(([commandClass, {index}]) => {
      if (commandClass.usage === undefined) return [];
      const {usage: path} = this.getUsageByIndex(index, {detailed: false});
      const {usage} = this.getUsageByIndex(index, {detailed: true, inlineOptions: false});
      return [{path, usage, category: plain(commandClass.usage.category), description: plain(commandClass.usage.description)}];
    });
  }
}

/** What an option's value is, for help: `--store DIR`, `--tag NAME:TAG`. */
const VALUE_NAMES: Record<string, string> = {
  '--store': 'DIR', '--tag': 'NAME:TAG', '--on': 'IMAGE', '--message': 'TEXT', '-m': 'TEXT', '--name': 'NAME',
  '--format': 'FORMAT', '--compress': 'gzip|zstd|none', '--mode': 'MODE',
};

function valueName(names: string): string {
  for (const n of names.split(',')) if (VALUE_NAMES[n]) return VALUE_NAMES[n]!;
  return 'VALUE';
}

/**
 * strata's command line with clipanion's -h and --version and `commands` registered, in
 * their order; `paths` are every command's (StrataCli.commandPaths).
 */
export function commandLine(commands: readonly CommandClass<BaseContext>[], options: {enableColors?: boolean; paths: Paths}): StrataCli {
  const cli = new StrataCli({binaryLabel: 'strata', binaryName: 'strata', binaryVersion: '0.1.0', enableColors: options.enableColors});
  cli.commandPaths = options.paths;
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  for (const command of commands) cli.register(command);
  return cli;
}
