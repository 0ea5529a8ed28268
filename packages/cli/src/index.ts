import {canMean, routable} from './commandPaths.js';
import {commandPaths, commands} from './commands/index.js';
import {commandLine, type StrataCli} from './StrataCli.js';

export {EXIT, StrataCli} from './StrataCli.js';

/**
 * The strata command line. With `argv`, only the commands argv can mean are registered
 * (every command when it names none: help, typos); without, every command.
 */
export function buildCli(options: {enableColors?: boolean; argv?: readonly string[]} = {}): StrataCli {
  const argv = options.argv && routable(options.argv);
  const some = argv ? commands.filter(c => canMean(c.paths, argv)) : [];
  return commandLine(some.length > 0 ? some : commands, {enableColors: options.enableColors, paths: commandPaths});
}
