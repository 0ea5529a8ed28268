import {Builtins} from 'clipanion';
import {commands} from './commands/index.js';
import {StrataCli} from './StrataCli.js';

export {EXIT, StrataCli} from './StrataCli.js';

/** The strata command line, with every command registered. */
export function buildCli(options: {enableColors?: boolean} = {}): StrataCli {
  const cli = new StrataCli({binaryLabel: 'strata', binaryName: 'strata', binaryVersion: '0.1.0', enableColors: options.enableColors});
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  for (const command of commands) cli.register(command);
  return cli;
}
