import {spawnSync} from 'node:child_process';
import * as os from 'node:os';
import {UnionError} from '../errors.js';

/** One mount(2) to make, as containerd describes a mount: type, source, target, options. */
export interface Mount {
  readonly type: 'erofs' | 'overlay';
  readonly source: string;
  readonly target: string;
  readonly options: readonly string[];
}

/** mount(2)'s number per architecture (Linux include/uapi/asm-generic/unistd.h and arch tables). */
const SYS_MOUNT: Partial<Record<string, number>> = {x64: 165, arm64: 40, ia32: 21, arm: 21, riscv64: 40, ppc64: 21, s390x: 21};
const MS_RDONLY = 1;

/**
 * Calls mount(2) from a tiny Perl process (perl-base is essential in Debian; Node has no
 * mount binding). For an EROFS image this mounts the file itself (Linux 6.12+ file-backed
 * EROFS): no loop device, and mountinfo names the image file as the source. util-linux's
 * mount(8) would set up a loop device for it; that is the fallback where mount(2) of a
 * file is refused (an older kernel: ENOTBLK).
 */
const PERL_MOUNT = String.raw`
my ($nr, $src, $target, $type, $flags, $data) = @ARGV;
my $r = syscall($nr + 0, $src, $target, $type, $flags + 0, $data);
if ($r != 0) { my $n = $! + 0; for my $k (keys %!) { if ($!{$k}) { print STDERR "$k\n"; exit 1; } } print STDERR "E$n\n"; exit 1; }
`;

/** Performs one mount. Throws UnionError MOUNT_FAILED naming the errno and what was mounted. */
export function performMount(m: Mount): void {
  const nr = SYS_MOUNT[os.arch()];
  const data = m.options.filter(o => o !== 'ro').join(',');
  const flags = m.options.includes('ro') ? MS_RDONLY : 0;
  if (nr !== undefined) {
    const r = spawnSync('perl', ['-e', PERL_MOUNT, String(nr), m.source, m.target, m.type, String(flags), data], {encoding: 'utf8'});
    if (r.status === 0) return;
    const errno = r.stderr.trim();
    if (!(m.type === 'erofs' && errno === 'ENOTBLK')) throw mountError(m, errno || r.error?.message || 'perl failed');
  }
  const args = ['-t', m.type, '-o', [...m.options, ...(m.type === 'erofs' ? ['loop'] : [])].join(','), m.source, m.target];
  const r = spawnSync('mount', args, {encoding: 'utf8'});
  if (r.status !== 0) throw mountError(m, r.error?.message ?? r.stderr.trim());
}

function mountError(m: Mount, why: string): UnionError {
  const hint = why === 'EPERM' ? ' (mounting needs root)' : why === 'EINVAL' && m.type === 'overlay' ? ' (does this kernel take data-only lower layers, lowerdir=A::B? Linux 6.5 or later)' : '';
  return new UnionError('MOUNT_FAILED', `cannot mount ${m.type} on ${m.target}: ${why}${hint}`);
}

/** Unmounts `target` (with `lazy`, detaches it even while busy). Throws UnionError MOUNT_BUSY when a process still uses it. */
export function performUnmount(target: string, lazy = false): void {
  const r = spawnSync('umount', [...(lazy ? ['-l'] : []), target], {encoding: 'utf8'});
  // Another strata process (rm --force beside the run that mounted it) may have been first.
  if (r.status === 0 || /not mounted|no mount point specified/.test(r.stderr)) return;
  if (/busy/i.test(r.stderr)) throw new UnionError('MOUNT_BUSY', `${target} is busy: a process still has files open or its working directory there`);
  throw new UnionError('MOUNT_FAILED', `cannot unmount ${target}: ${r.error?.message ?? r.stderr.trim()}`);
}
