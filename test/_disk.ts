import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type {ExecutionContext} from 'ava';
import {tempDir} from './_cli.js';

/** A real tmpfs of `mb` MiB, unmounted when the test ends: needs root (CI runs as root); fails loudly otherwise. */
export async function smallDisk(t: ExecutionContext, mb: number): Promise<string> {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs and must run as root (CI does)');
  const mnt = path.join(await tempDir(t), 'disk');
  await fs.mkdir(mnt);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${mb}m`, 'tmpfs', mnt], {encoding: 'utf8'});
  if (r.status !== 0) throw new Error(`mount tmpfs failed: ${r.stderr}`);
  t.teardown(() => { spawnSync('umount', [mnt]); });
  return mnt;
}
