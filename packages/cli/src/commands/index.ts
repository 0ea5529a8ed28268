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

/** Every command's paths (`[['images'], ['image', 'ls']]`, …). */
export const commandPaths = commands.flatMap(c => c.paths);
