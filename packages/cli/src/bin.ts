import {Cli} from 'clipanion';
import {buildCli} from './index.js';

/** In the bundle, the loader's report of what runs (packages/cli/bin/strata.js); unbundled, undefined. */
declare const __strataRan: ((key: string) => void) | undefined;

const colors = process.env.NO_COLOR ? false : process.stdout.isTTY ? undefined : false;
const argv = process.argv.slice(2);
const cli = buildCli({enableColors: colors, argv});
if (typeof __strataRan === 'function') cli.onRun = __strataRan;
// No top-level await: the bundle of this entry is CommonJS (scripts/bundle.js).
void cli.run(argv, Cli.defaultContext).then(code => { process.exitCode = code; });
