import {Cli} from 'clipanion';
import {buildCli} from './index.js';

const colors = process.env.NO_COLOR ? false : process.stdout.isTTY ? undefined : false;
const argv = process.argv.slice(2);
// No top-level await: the bundle of this entry is CommonJS (scripts/bundle.js).
void buildCli({enableColors: colors, argv}).run(argv, Cli.defaultContext).then(code => { process.exitCode = code; });
