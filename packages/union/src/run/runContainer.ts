import {type ChildProcess, spawn} from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type {ContainerRecord} from '@strata/store';
import type {ContainerLayers} from '../ContainerLayers.js';
import {UnionError} from '../errors.js';
import {findContainerMount, mountContainer, runningPid, runtimeId, unmountContainer} from '../mount/mountContainer.js';
import {parseViewPath} from '../viewPath.js';
import {runtimeSpec} from './runtimeSpec.js';

export interface RunOptions {
  /** Replaces the image's cmd (`-- CMD ARG...`). */
  readonly command?: readonly string[];
  /** Keep stdin open to the process (`-i`). */
  readonly interactive?: boolean;
  /** A terminal for the process (`-t`); stdin must be one. */
  readonly terminal?: boolean;
  /**
   * The container is removed when the process ends (`--rm`): its mount is volatile (no
   * syncs of the upper; see `ContainerLayers.mounts`).
   */
  readonly removeAfter?: boolean;
  /** Called once everything is in place, just before the process starts (e.g. to let go of the store's lock). */
  readonly beforeStart?: () => Promise<void>;
}

const RUNTIME_MOUNT_POINTS = ['dev', 'proc', 'sys'];

/** Signals a user sends to a foreground command, handed on to the container's process. */
const FORWARDED: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

/**
 * Runs the container's process in the foreground with runc (Debian's runc 1.1 works on
 * this host's hybrid cgroups, crun 1.8 does not: research/mounts.md §6): mounts the
 * container unless it is mounted, writes `containers/<id>/bundle/config.json` from the
 * image config, passes stdin (with -i or -t), stdout and stderr straight through, hands
 * on signals, and unmounts afterwards what it mounted. Returns the process's exit code
 * (128 + n for a signal, as a shell reports it). Throws RUNNING, RUN_FAILED, and the
 * mount's errors.
 */
export async function runContainer(layers: ContainerLayers, c: ContainerRecord, options: RunOptions = {}): Promise<number> {
  const store = layers.store;
  const label = c.name ?? c.id.slice(0, 12);
  if (runningPid(c) !== undefined) throw new UnionError('RUNNING', `container ${label} is already running`);
  if (options.terminal && !process.stdin.isTTY) throw new UnionError('RUN_FAILED', '-t needs a terminal on stdin');
  const image = await store.getImage(c.image);
  if (!image) throw new TypeError(`assertion failed: container ${c.id} names image ${c.image}, which is missing`);
  const mount = await mountContainer(layers, c, undefined, {volatile: options.removeAfter === true});
  try {
    const view = await layers.view(c);
    const spec = await runtimeSpec(mount.mountPoint, image.config, view, {
      ...(options.command && options.command.length > 0 ? {command: options.command} : {}),
      terminal: options.terminal === true,
      hostname: label,
    });
    const bundle = path.join(path.dirname(store.upperDir(c.id)), 'bundle');
    fs.mkdirSync(bundle, {recursive: true});
    fs.writeFileSync(path.join(bundle, 'config.json'), `${JSON.stringify(spec, null, 2)}\n`);
    // runc makes the mount points of /dev, /proc and /sys when the image lacks them; they
    // are the runtime's, not the process's changes, so they go again afterwards (docker
    // keeps them in an "init" layer for the same reason). Done on the mount's own root
    // (the kernel owns the upper while mounted): top-level names, lstat'ed, so no symlink
    // a process made is followed.
    const made: string[] = [];
    for (const name of RUNTIME_MOUNT_POINTS) if (!(await view.exists(parseViewPath(`/${name}`)))) made.push(name);
    const root = fs.statSync(mount.mountPoint);
    await view.close();
    await options.beforeStart?.();
    try {
      return await runRunc(['run', '--bundle', bundle, runtimeId(c)], options);
    } finally {
      // Unless the container went meanwhile (rm --force from another strata).
      if (findContainerMount(store, c.id)?.mountPoint === mount.mountPoint) {
        for (const name of made) {
          const p = path.join(mount.mountPoint, name);
          if (fs.lstatSync(p, {throwIfNoEntry: false})?.isDirectory() && fs.readdirSync(p).length === 0) fs.rmdirSync(p);
        }
        if (made.length > 0) fs.utimesSync(mount.mountPoint, root.atime, root.mtime);
      }
    }
  } finally {
    if (mount.fresh) unmountContainer(store, c);
  }
}

function runRunc(args: readonly string[], options: RunOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const stdin = options.interactive || options.terminal ? 'inherit' : 'ignore';
    // Without a terminal runc gets a process group of its own, so a Ctrl-C reaches the
    // container once (through strata), not twice. With one, runc puts the terminal in raw
    // mode and the keys go to the container as bytes; it must stay in the foreground group.
    // The handlers are in place before runc starts: on a loaded machine the container's
    // process can run (and be signalled) before this thread gets back from spawn, and a
    // signal with no handler ends strata, leaving runc and the process behind. A handler
    // runs from the event loop, after this block, when `child` is set.
    let child: ChildProcess | undefined;
    const forward = (signal: NodeJS.Signals) => { child?.kill(signal); };
    for (const s of FORWARDED) process.on(s, forward);
    const done = () => { for (const s of FORWARDED) process.off(s, forward); };
    try {
      child = spawn('runc', [...args], {stdio: [stdin, 'inherit', 'inherit'], detached: !options.terminal});
    } catch (err) {
      done();
      throw err;
    }
    child.on('error', err => {
      done();
      reject(new UnionError('RUN_FAILED', `cannot start runc (is Debian's runc installed?): ${err.message}`));
    });
    child.on('close', (code, signal) => {
      done();
      resolve(code ?? 128 + (signal ? osSignal(signal) : 0));
    });
  });
}

function osSignal(name: NodeJS.Signals): number {
  return os.constants.signals[name] ?? 0;
}
