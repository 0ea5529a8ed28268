import {Cli} from 'clipanion';
import {buildCli} from './index.js';

const colors = process.env.NO_COLOR ? false : process.stdout.isTTY ? undefined : false;
const argv = process.argv.slice(2);
process.exitCode = await buildCli({enableColors: colors, argv}).run(argv, Cli.defaultContext);
