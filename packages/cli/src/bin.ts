import {Cli} from 'clipanion';
import {buildCli} from './index.js';

const colors = process.env.NO_COLOR ? false : process.stdout.isTTY ? undefined : false;
process.exitCode = await buildCli({enableColors: colors}).run(process.argv.slice(2), Cli.defaultContext);
