import {DfCommand} from './df.js';
import {GcCommand} from './gc.js';
import {InitCommand} from './init.js';
import {PinAddCommand, PinLsCommand, PinRmCommand} from './pin.js';
import {VerifyCommand} from './verify.js';

/** Every command of strata, in the order help lists them. */
export const commands = [
  InitCommand,
  GcCommand,
  DfCommand,
  VerifyCommand,
  PinAddCommand,
  PinRmCommand,
  PinLsCommand,
];
