import {CatCommand} from './cat.js';
import {CheckoutCommand} from './container/checkout.js';
import {CommitCommand} from './container/commit.js';
import {CpCommand} from './container/cp.js';
import {CreateCommand} from './container/create.js';
import {DiffCommand} from './container/diff.js';
import {PsCommand} from './container/ps.js';
import {RmCommand} from './container/rm.js';
import {MountCommand} from './container/mount.js';
import {RunCommand} from './container/run.js';
import {UmountCommand} from './container/umount.js';
import {FsCatCommand} from './fs/cat.js';
import {FsChmodCommand} from './fs/chmod.js';
import {FsLnCommand} from './fs/ln.js';
import {FsLsCommand} from './fs/ls.js';
import {FsMkdirCommand} from './fs/mkdir.js';
import {FsMvCommand} from './fs/mv.js';
import {FsRmCommand} from './fs/rm.js';
import {FsStatCommand} from './fs/stat.js';
import {FsWriteCommand} from './fs/write.js';
import {DfCommand} from './df.js';
import {GcCommand} from './gc.js';
import {ImageExportCommand} from './image/export.js';
import {ImageImportCommand} from './image/import.js';
import {ImageInspectCommand} from './image/inspect.js';
import {ImagesCommand} from './image/list.js';
import {ImageRmCommand} from './image/rm.js';
import {ImageTagCommand} from './image/tag.js';
import {ImportCommand} from './import.js';
import {InitCommand} from './init.js';
import {LayerExportCommand} from './layer/export.js';
import {LayerInspectCommand} from './layer/inspect.js';
import {LayersCommand} from './layer/list.js';
import {LsCommand} from './ls.js';
import {PinAddCommand, PinLsCommand, PinRmCommand} from './pin.js';
import {LoginCommand, LogoutCommand} from './registry/login.js';
import {PullCommand} from './registry/pull.js';
import {PushCommand} from './registry/push.js';
import {VerifyCommand} from './verify.js';

/** Every command of strata, in the order help lists them. */
export const commands = [
  InitCommand,
  ImportCommand,
  ImagesCommand,
  ImageInspectCommand,
  ImageTagCommand,
  ImageRmCommand,
  ImageImportCommand,
  ImageExportCommand,
  PullCommand,
  PushCommand,
  LoginCommand,
  LogoutCommand,
  LayersCommand,
  LayerInspectCommand,
  LayerExportCommand,
  LsCommand,
  CatCommand,
  CreateCommand,
  PsCommand,
  RmCommand,
  RunCommand,
  MountCommand,
  UmountCommand,
  FsLsCommand,
  FsCatCommand,
  FsStatCommand,
  FsWriteCommand,
  FsRmCommand,
  FsMkdirCommand,
  FsMvCommand,
  FsLnCommand,
  FsChmodCommand,
  CpCommand,
  DiffCommand,
  CommitCommand,
  CheckoutCommand,
  GcCommand,
  DfCommand,
  VerifyCommand,
  PinAddCommand,
  PinRmCommand,
  PinLsCommand,
];

type CommandClass = (typeof commands)[number];

/** The leading words of argv (before the first option): the command path a user typed. */
function leadingWords(argv: readonly string[]): string[] {
  const words: string[] = [];
  for (const a of argv) {
    if (a.startsWith('-')) break;
    words.push(a);
  }
  return words;
}

/**
 * The commands argv can mean: those one of whose paths its leading words start with.
 * Registering only those spares clipanion building its parser over every command (most
 * of a command's fixed cost once modules load: docs/benchmarks.md). Empty when argv names
 * no command path (no words, a group such as `fs` alone, an option first, a typo): the
 * caller then registers every command, for help and for "did you mean".
 */
export function commandsFor(argv: readonly string[]): CommandClass[] {
  const words = leadingWords(argv);
  return commands.filter(c => c.paths.some(p => p.length > 0 && p.length <= words.length && p.every((w, i) => w === words[i])));
}

/**
 * The command group argv asks about (`strata image --help`, `strata fs`): its words, when
 * they are a proper prefix of some command paths and nothing else follows but --help.
 * `[]` for strata itself (no words).
 */
export function groupFor(argv: readonly string[]): string[] | undefined {
  const words = leadingWords(argv);
  const rest = argv.slice(words.length);
  if (rest.some(a => a !== '--help' && a !== '-h')) return undefined;
  if (words.length === 0) return rest.length > 0 || argv.length === 0 ? [] : undefined;
  const isPrefix = commands.some(c => c.paths.some(p => p.length > words.length && words.every((w, i) => w === p[i])));
  const isPath = commands.some(c => c.paths.some(p => p.length === words.length && words.every((w, i) => w === p[i])));
  return isPrefix && !isPath ? words : undefined;
}
