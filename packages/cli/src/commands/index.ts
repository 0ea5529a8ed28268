import {InitCommand} from './init.js';

/** Every command of strata, in the order help lists them. */
export const commands = [
  InitCommand,
];
