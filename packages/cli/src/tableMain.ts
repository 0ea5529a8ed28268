import type {BaseContext, CommandClass} from 'clipanion';
import {canMean, groupFor, printGroupHelp, routable, unknownCommand, type Paths} from './commandPaths.js';
import {EXIT} from './exitCodes.js';
import {processContext} from './stdio.js';

/**
 * The command line as the bundle's entry knows it before loading any command (written by
 * scripts/commandTable.js when strata is bundled, from the command classes and the
 * library's own group help, so it cannot drift from them).
 */
export interface CommandTable {
  /** Every command in the order strata registers them: its paths, and its class when loaded. */
  readonly commands: readonly {readonly paths: Paths; readonly load: () => Promise<CommandClass<BaseContext>>}[];
  /** What `strata [GROUP] --help` prints (StrataCli.groupHelp), by the group's words joined by a space ('' for strata). */
  readonly groups: Readonly<Record<string, string>>;
}

/** In the bundle, the loader's report of what runs (packages/cli/bin/strata.js); else undefined. */
declare const __strataRan: ((key: string) => void) | undefined;

/**
 * The strata process, as bin.ts runs it, but from a table: a group's help is printed from
 * it with neither clipanion nor any command loaded, and so is the error for a command
 * that does not exist; otherwise only the commands argv can mean are loaded and registered
 * (every command when it names none: `--version`, options first), and clipanion runs as in bin.ts. Sets the process's exit code.
 */
export async function main(table: CommandTable): Promise<void> {
  const onRun = typeof __strataRan === 'function' ? __strataRan : undefined;
  const context = processContext();
  const argv = process.argv.slice(2);
  const args = routable(argv);
  const paths = table.commands.flatMap(c => c.paths);
  const group = groupFor(args, paths);
  const help = group && table.groups[group.join(' ')];
  if (help !== undefined) {
    onRun?.('help');
    process.exitCode = printGroupHelp(args, help, context);
    return;
  }
  const unknown = unknownCommand(args, paths);
  if (unknown !== undefined) {
    onRun?.('help');
    context.stderr.write(unknown);
    process.exitCode = EXIT.usage;
    return;
  }
  const some = table.commands.filter(c => canMean(c.paths, args));
  const [{Cli}, {commandLine}, commands] = await Promise.all([
    import('clipanion'), import('./StrataCli.js'), Promise.all((some.length > 0 ? some : table.commands).map(c => c.load())),
  ]);
  // clipanion merges its default context into every command's: the process's (stdio.ts).
  Cli.defaultContext = context as unknown as typeof Cli.defaultContext;
  const colors = process.env.NO_COLOR ? false : context.stdout.isTTY ? undefined : false;
  const cli = commandLine(commands, {enableColors: colors, paths});
  cli.onRun = onRun;
  process.exitCode = await cli.run(argv, context);
}
