import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type {ContainerRecord, Store} from '@strata/store';
import type {ContainerLayers} from '../ContainerLayers.js';
import {containerDirs, isLowerMount} from './containerDirs.js';
import {UnionError} from '../errors.js';
import {performMounts, performUnmounts} from './kernelMount.js';
import {type MountInfo, readMountInfo} from './mountinfo.js';
import {requireKernelMounts} from './probe.js';

/** A container's live kernel mount, as mountinfo shows it. */
export interface ContainerMount {
  readonly mountPoint: string;
  /** The metadata image's own mount, if it is still attached. */
  readonly metaMountPoint?: string;
}

/** The runc container id of a strata container: unique on the host, recognisable in `runc list`. */
export function runtimeId(c: {id: string}): string {
  return `strata-${c.id}`;
}

/** Finds the container's overlay mount by its upperdir in /proc/self/mountinfo (or `mountInfo`, read once by a caller asking for many containers). */
export function findContainerMount(store: Store, id: string, mountInfo?: readonly MountInfo[]): ContainerMount | undefined {
  if (!fs.existsSync(store.upperDir(id))) return undefined;
  const dirs = containerDirs(store, id);
  const mounts = mountInfo ?? readMountInfo();
  const overlay = mounts.find(m => m.fstype === 'overlay' && m.superOptions.get('upperdir') === dirs.upper);
  if (!overlay) return undefined;
  const meta = mounts.find(m => m.mountPoint === dirs.meta);
  return {mountPoint: overlay.mountPoint, ...(meta ? {metaMountPoint: meta.mountPoint} : {})};
}

/**
 * Mounts a container at `dir` (default `containers/<id>/rootfs` in the store) and returns
 * where. Idempotent: a mounted container answers with its mount point. Throws MOUNT_BUSY
 * (already mounted elsewhere, or `dir` is a mount point or not empty), NO_KERNEL_MOUNT,
 * MOUNT_FAILED. A failure part-way unmounts what it mounted. `volatile`: for a container
 * that is removed afterwards (see `ContainerLayers.mounts`).
 */
export async function mountContainer(layers: ContainerLayers, c: ContainerRecord, dir?: string, options: {volatile?: boolean} = {}): Promise<ContainerMount & {fresh: boolean}> {
  const store = layers.store;
  const dirs = containerDirs(store, c.id);
  const existing = findContainerMount(store, c.id);
  const label = c.name ?? c.id.slice(0, 12);
  if (existing) {
    if (dir !== undefined && realOrResolved(dir) !== existing.mountPoint)
      throw new UnionError('MOUNT_BUSY', `container ${label} is already mounted at ${existing.mountPoint}`);
    return {...existing, fresh: false};
  }
  requireKernelMounts();
  // The kernel's mark of an earlier volatile mount (a `run --rm` that did not get to remove
  // the container): it refuses that upper for good, since a crash may have lost its writes.
  if (fs.existsSync(path.join(dirs.work, 'work', 'incompat', 'volatile')))
    throw new UnionError('MOUNT_FAILED', `container ${label} was left by a "strata run --rm" that did not finish; its changes may be incomplete, so it cannot be mounted again: "strata rm" it`);
  fs.mkdirSync(dir ?? dirs.rootfs, {recursive: true});
  const target = fs.realpathSync(dir ?? dirs.rootfs);
  if (readMountInfo().some(m => m.mountPoint === target)) throw new UnionError('MOUNT_BUSY', `${target} is already a mount point`);
  if (fs.readdirSync(target).length > 0) throw new UnionError('MOUNT_BUSY', `${target} is not empty; give an empty directory to mount on`);
  const mounts = await layers.mounts(c, target, options);
  fs.mkdirSync(dirs.work, {recursive: true});
  for (const m of mounts) if (m.type === 'erofs') fs.mkdirSync(m.target, {recursive: true});
  // Lower mounts (the metadata image, packs) left by a kill before the overlay mount are replaced.
  const left = lowerMounts(dirs);
  if (left.length > 0) performUnmounts(left);
  performMounts(mounts); // one process for all; a failed overlay unmounts the images again
  return {mountPoint: target, metaMountPoint: dirs.meta, fresh: true};
}

/** The container's metadata image and pack mounts that mountinfo shows now. */
function lowerMounts(dirs: ReturnType<typeof containerDirs>): string[] {
  return [...new Set(readMountInfo().map(m => m.mountPoint).filter(p => isLowerMount(dirs, p)))];
}

/**
 * Unmounts a container (the overlay, then its metadata image and packs). Refuses (RUNNING) while a
 * process runs in it, unless `force`, which kills it first; a process that still has files
 * open in the mount makes it MOUNT_BUSY. Returns false when it was not mounted.
 */
export function unmountContainer(store: Store, c: ContainerRecord, options: {force?: boolean} = {}): boolean {
  const mounted = findContainerMount(store, c.id);
  const dirs = containerDirs(store, c.id);
  const label = c.name ?? c.id.slice(0, 12);
  if (!mounted) {
    const left = lowerMounts(dirs);
    if (left.length > 0) performUnmounts(left);
    return false;
  }
  const pid = runningPid(c);
  if (pid !== undefined) {
    if (!options.force) throw new UnionError('RUNNING', `a process (pid ${pid}) still runs in container ${label}; stop it first`);
    spawnSync('runc', ['kill', runtimeId(c), 'KILL'], {stdio: 'ignore'});
    for (let i = 0; i < 100 && runningPid(c) !== undefined; i++) spawnSync('sleep', ['0.05']);
    spawnSync('runc', ['delete', '--force', runtimeId(c)], {stdio: 'ignore'});
  }
  // --force detaches a mount that is still busy (umount -l): the kernel lets go of it when the last user does.
  // One process for all; the images' mounts may be gone already (a target that is no mount point is passed over).
  performUnmounts([mounted.mountPoint, ...lowerMounts(dirs)], options.force === true);
  // Another strata (rm --force beside the run that mounted it) may have removed it already.
  if (mounted.mountPoint === dirs.rootfs) {
    try {
      fs.rmdirSync(dirs.rootfs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return true;
}

/**
 * Where runc keeps the state of container `id` under its default root (runc 1.1 main.go):
 * /run/runc for root outside a user namespace. Undefined where runc would pick another
 * root (XDG_RUNTIME_DIR, for a user or in a user namespace): then only runc can say.
 */
function runcStateDir(id: string): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  if (process.env.XDG_RUNTIME_DIR) {
    // The initial user namespace maps all 2^32 ids onto themselves.
    const map = fs.readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    if (map.join(' ') !== '0 0 4294967295') return undefined;
  }
  return path.join('/run/runc', id);
}

/**
 * The pid of the container's process when runc says it is running (asked live, never
 * remembered). runc knows no container it has no state directory for: then there is no
 * need to ask it (a `runc state` is ~10 ms of every run, mount and umount).
 */
export function runningPid(c: {id: string}): number | undefined {
  const stateDir = runcStateDir(runtimeId(c));
  if (stateDir !== undefined && !fs.existsSync(stateDir)) return undefined;
  const r = spawnSync('runc', ['state', runtimeId(c)], {encoding: 'utf8'});
  if (r.status !== 0) return undefined;
  try {
    const state = JSON.parse(r.stdout) as {status?: string; pid?: number};
    return state.status === 'running' || state.status === 'created' || state.status === 'paused' ? state.pid : undefined;
  } catch {
    return undefined;
  }
}

function realOrResolved(dir: string): string {
  try {
    return fs.realpathSync(dir);
  } catch {
    return path.resolve(dir);
  }
}
