import {Builtins} from 'clipanion';
import {commands, commandsFor} from './commands/index.js';
import {StrataCli, containerFirst} from './StrataCli.js';

export {EXIT, StrataCli} from './StrataCli.js';

/**
 * The strata command line. With `argv`, only the commands argv can mean are registered
 * (every command when it names none: help, typos); without, every command.
 */
export function buildCli(options: {enableColors?: boolean; argv?: readonly string[]} = {}): StrataCli {
  const cli = new StrataCli({binaryLabel: 'strata', binaryName: 'strata', binaryVersion: '0.1.0', enableColors: options.enableColors});
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  const some = options.argv ? commandsFor(containerFirst(options.argv)) : [];
  for (const command of some.length > 0 ? some : commands) cli.register(command);
  return cli;
}
