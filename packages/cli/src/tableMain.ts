import type {BaseContext, Cli, CommandClass} from 'clipanion';
import {cacheKey, canMean, mayMean, routable, unknownCommand, type Paths} from './commandPaths.js';
import {EXIT} from './exitCodes.js';
import type {commandLine} from './StrataCli.js';
import {processContext} from './stdio.js';

/**
 * The command line as the bundle's entry knows it before loading any command (written by
 * scripts/commandTable.js when strata is bundled, from the command classes and the
 * library's own group help, so it cannot drift from them).
 */
export interface CommandTable {
  /** Each command's paths, in the order strata registers them. */
  readonly paths: readonly Paths[];
  /**
   * The library's answers to what runs no command (the help of strata, of a group, of a
   * command; the version), by argv as JSON (`["image","--help"]`, after containerFirst, `-h`
   * and `-v` as `--help` and `--version`): the exit code, stdout, stderr, and whether a
   * terminal with colours gets the same (else the answer is for output without colours only).
   */
  readonly answers: Readonly<Record<string, readonly [code: number, stdout: string, stderr: string, sameInColour: boolean]>>;
  /** The rest of the command line, every command, loaded when a command runs. */
  readonly commands: () => Promise<Commands>;
  /**
   * Each command's own file (by the table's order): the same, with that command alone
   * (its `load` has that one entry), and only the code it reaches: a smaller file to read
   * and a smaller code cache to deserialise than every command's (docs/design.md).
   */
  readonly command?: readonly (() => Promise<Commands>)[];
}

/** What a command needs beyond the table. */
export interface Commands {
  readonly Cli: typeof Cli;
  readonly commandLine: typeof commandLine;
  /** Each command's class (its module evaluated on the call), in the table's order; a command's own file has its entry alone. */
  readonly load: readonly ((() => Promise<CommandClass<BaseContext>>) | undefined)[];
}

/** In the bundle, the loader's report of what runs (packages/cli/bin/strata.js); else undefined. */
declare const __strataRan: ((key: string) => void) | undefined;

/**
 * The strata process, as bin.ts runs it, but from a table: an answer of the table, and the
 * error for a command that does not exist, are printed with neither clipanion nor any
 * command loaded; otherwise only the commands argv can mean are loaded and registered
 * (every command when it names none: options first), and clipanion runs as in bin.ts.
 * Sets the process's exit code.
 */
export async function main(table: CommandTable): Promise<void> {
  const onRun = typeof __strataRan === 'function' ? __strataRan : undefined;
  const context = processContext();
  const argv = process.argv.slice(2);
  const args = routable(argv);
  const answer = table.answers[JSON.stringify(args.map(a => (a === '-h' ? '--help' : a === '-v' ? '--version' : a)))];
  // Colours as bin.ts decides them: none without a terminal or with NO_COLOR.
  const plain = () => Boolean(process.env.NO_COLOR) || context.stdout.isTTY !== true;
  if (answer !== undefined && (answer[3] || plain())) {
    onRun?.('help');
    if (answer[1]) context.stdout.write(answer[1]);
    if (answer[2]) context.stderr.write(answer[2]);
    process.exitCode = answer[0];
    return;
  }
  const paths = table.paths.flat();
  const unknown = unknownCommand(args, paths);
  if (unknown !== undefined) {
    onRun?.('help');
    context.stderr.write(unknown);
    process.exitCode = EXIT.usage;
    return;
  }
  const among = (means: (p: Paths) => boolean) => table.paths.map((p, i) => means(p) ? i : -1).filter(i => i >= 0);
  let some = among(p => canMean(p, args));
  // Options before the command (`strata --store DIR ps`): the commands whose words argv
  // has, checked below to parse (clipanion's own errors and help need every command).
  const optionsFirst = some.length === 0 && args[0]?.startsWith('-') === true;
  if (optionsFirst) some = among(p => mayMean(p, args));
  // The packages' code cache is looked up by what runs (else the loader guesses from argv's
  // leading words): help for what can mean no command (help, a usage error, the version),
  // the command's own when options come first and one command has the words.
  if (some.length === 0) onRun?.('help');
  else if (optionsFirst && some.length === 1) onRun?.(cacheKey(table.paths[some[0]!]![0]) ?? 'help');
  const colors = process.env.NO_COLOR ? false : context.stdout.isTTY ? undefined : false;
  const every = table.paths.map((_, i) => i);
  /** The command line of these commands, from `files` (one command's own, or every command's). */
  const build = async (files: () => Promise<Commands>, which: readonly number[]) => {
    const {Cli, commandLine, load} = await files();
    // clipanion merges its default context into every command's: the process's (stdio.ts).
    Cli.defaultContext = context as unknown as typeof Cli.defaultContext;
    return commandLine(await Promise.all(which.map(i => load[i]!())), {enableColors: colors, paths});
  };
  const own = some.length === 1 ? table.command?.[some[0]!] : undefined;
  let cli = await build(own ?? table.commands, some.length > 0 ? some : every);
  if (optionsFirst && some.length > 0 && !cli.parses(argv)) cli = await build(table.commands, every);
  cli.onRun = onRun;
  process.exitCode = await cli.run(argv, context);
}
