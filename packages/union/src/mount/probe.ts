import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {UnionError} from '../errors.js';

/** What this host lets strata do with kernel mounts. */
export interface MountSupport {
  /** Empty when containers can be mounted and run. */
  readonly missing: readonly string[];
}

/** What works without kernel mounts, for the one line that says what is missing. */
const STILL_WORKS = 'everything else (import, create, fs, cp, diff, commit, checkout, export, gc) still works';

let cached: MountSupport | undefined;

/**
 * Probes once per boot (the answer is kept in the temporary directory under the boot id,
 * and in memory): root (mount(2) needs CAP_SYS_ADMIN), erofs and overlay in
 * /proc/filesystems, and a scratch overlay mount with a data-only lower (`lowerdir=A::B`,
 * Linux 6.5+; older kernels refuse it, or want metacopy=on, which would let the kernel
 * write metacopy files into the upper).
 */
export function probeMountSupport(): MountSupport {
  if (cached) return cached;
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('not root (mount and run need root)');
  const filesystems = fs.readFileSync('/proc/filesystems', 'utf8');
  for (const fstype of ['erofs', 'overlay'])
    if (!filesystems.split('\n').some(l => l.trim().split(/\s+/).pop() === fstype)) missing.push(`no ${fstype} in this kernel`);
  if (missing.length === 0) {
    const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const memo = path.join(os.tmpdir(), `strata-mount-probe-${bootId}.json`);
    const known = readMemo(memo);
    if (known) missing.push(...known);
    else {
      if (!dataOnlyLowersWork()) missing.push('no data-only overlay lower layers (lowerdir=A::B, Linux 6.5 or later)');
      fs.writeFileSync(memo, JSON.stringify(missing));
    }
  }
  cached = {missing};
  return cached;
}

/** Throws NO_KERNEL_MOUNT with one line: what is missing and what still works. */
export function requireKernelMounts(): void {
  const {missing} = probeMountSupport();
  if (missing.length > 0) throw new UnionError('NO_KERNEL_MOUNT', `cannot mount containers here: ${missing.join('; ')}; ${STILL_WORKS}`);
}

function readMemo(file: string): string[] | undefined {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    return Array.isArray(v) ? v.map(String) : undefined;
  } catch {
    return undefined;
  }
}

function dataOnlyLowersWork(): boolean {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-probe-'));
  try {
    for (const d of ['meta', 'data', 'upper', 'work', 'merged']) fs.mkdirSync(path.join(dir, d));
    const options = `lowerdir=${dir}/meta::${dir}/data,upperdir=${dir}/upper,workdir=${dir}/work,redirect_dir=nofollow,index=off,metacopy=off`;
    const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', options, path.join(dir, 'merged')], {stdio: 'ignore'});
    if (r.status !== 0) return false;
    spawnSync('umount', [path.join(dir, 'merged')], {stdio: 'ignore'});
    return true;
  } finally {
    fs.rmSync(dir, {recursive: true, force: true});
  }
}
