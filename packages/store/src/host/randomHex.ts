import * as fs from 'node:fs';

/**
 * `bytes` random bytes from the kernel, as hex: for names that must not collide (leases,
 * temporary files, container ids). Read from /dev/urandom rather than through node:crypto,
 * which a command would otherwise load for these names alone (36 of Node's internal
 * modules, 3-10 ms of `strata diff`); node:crypto where /dev/urandom cannot be read.
 */
export function randomHex(bytes: number): string {
  const buf = Buffer.alloc(bytes);
  try {
    const fd = fs.openSync('/dev/urandom', 'r');
    try {
      if (fs.readSync(fd, buf) !== bytes) throw new Error('short read');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return process.getBuiltinModule('node:crypto').randomBytes(bytes).toString('hex');
  }
  return buf.toString('hex');
}
