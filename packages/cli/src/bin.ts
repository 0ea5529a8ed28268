import {Cli} from 'clipanion';
import {buildCli} from './index.js';
import {processContext} from './stdio.js';

/** In the bundle, the loader's report of what runs (packages/cli/bin/strata.js); unbundled, undefined. */
declare const __strataRan: ((key: string) => void) | undefined;

// clipanion merges its default context into every command's: the process's, with stdout
// and stderr made when first needed (stdio.ts).
const context = processContext();
Cli.defaultContext = context as unknown as typeof Cli.defaultContext;
const colors = process.env.NO_COLOR ? false : context.stdout.isTTY ? undefined : false;
const argv = process.argv.slice(2);
const cli = buildCli({enableColors: colors, argv});
if (typeof __strataRan === 'function') cli.onRun = __strataRan;
// No top-level await: the bundle of this entry is CommonJS (scripts/bundle.js).
void cli.run(argv, context).then(code => { process.exitCode = code; });
