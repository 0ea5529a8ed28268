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

/** mount(2) and umount2(2) numbers per architecture (Linux include/uapi/asm-generic/unistd.h and arch tables). */
const SYS_MOUNT: Partial<Record<string, number>> = {x64: 165, arm64: 40, ia32: 21, arm: 21, riscv64: 40, ppc64: 21, s390x: 21};
const SYS_UMOUNT2: Partial<Record<string, number>> = {x64: 166, arm64: 39, ia32: 52, arm: 52, riscv64: 39, ppc64: 52, s390x: 52};
const MS_RDONLY = 1;
const MNT_DETACH = 2;

/**
 * Calls mount(2) from a tiny Perl process (perl-base is essential in Debian; Node has no
 * mount binding), for several mounts in turn in one process (a process start is most of a
 * mount's cost: ~5 ms each). An EROFS image file is mounted through a loop device, one per
 * image file for all its mounts: the kernel gives every mount of one block device one
 * superblock, so all containers of an image read one copy of its pages (file-backed EROFS
 * mounts, Linux 6.12+, make a superblock and a page cache per mount). The loop device of
 * the file is found again by its backing file's device and inode (LOOP_GET_STATUS64, with
 * the device held open meanwhile so it cannot be cleared), or set up (LOOP_CTL_GET_FREE,
 * LOOP_CONFIGURE) read-only, with direct I/O (no second copy in the image file's own page
 * cache) and auto-clear (the kernel lets it go with its last mount). Where no loop device
 * can be had, the file itself is mounted. On a failure it prints the index of the mount
 * that failed and its errno name, and stops.
 */
const PERL_MOUNT = String.raw`
use Fcntl;
# struct loop_info64 (232 bytes): lo_device, lo_inode, lo_rdevice, lo_offset at 0..31, lo_flags at 52.
sub loop_of {
  my $file = shift;
  my @st = stat($file) or return;
  opendir(my $d, '/sys/block') or return;
  for my $n (sort grep { /^loop\d+$/ && -e "/sys/block/$_/loop/backing_file" } readdir($d)) {
    sysopen(my $fh, "/dev/$n", O_RDONLY) or next;
    my $info = chr(0) x 232;
    ioctl($fh, 0x4C05, $info) or next;
    my ($dev, $ino, undef, $off) = unpack('Q<Q<Q<Q<', $info);
    my $flags = unpack('L<', substr($info, 52, 4));
    return ("/dev/$n", $fh) if $dev == $st[0] && $ino == $st[1] && $off == 0 && ($flags & 1);
  }
  sysopen(my $ctl, '/dev/loop-control', O_RDWR) or return;
  sysopen(my $img, $file, O_RDONLY) or return;
  for (1 .. 8) {
    my $n = ioctl($ctl, 0x4C82, 0);
    defined $n or return;
    $n += 0;
    sysopen(my $fh, "/dev/loop$n", O_RDONLY) or next;
    my $info = pack('Q<5 L<4', 0, 0, 0, 0, 0, 0, 0, 0, 1 | 4 | 16) . pack('a64', substr($file, -63)) . (chr(0) x 112);
    return ("/dev/loop$n", $fh) if ioctl($fh, 0x4C0A, pack('L<L<', fileno($img), 0) . $info . (chr(0) x 64));
  }
  return;
}
my $nr = shift @ARGV;
my @held;
for (my $i = 0; @ARGV; $i++) {
  my ($src, $target, $type, $flags, $data) = splice(@ARGV, 0, 5);
  if ($type eq 'erofs' && -f $src) { my ($dev, $fh) = loop_of($src); if ($dev) { $src = $dev; push @held, $fh; } }
  my $r = syscall($nr + 0, $src, $target, $type, $flags + 0, $data);
  if ($r != 0) { my $n = $! + 0; for my $k (keys %!) { if ($!{$k}) { print STDERR "$i $k
"; exit 1; } } print STDERR "$i E$n
"; exit 1; }
}
`;

/** Calls umount2(2) on each target in turn, in one Perl process; prints the index and errno name of one that failed, and stops. */
const PERL_UMOUNT = String.raw`
my ($nr, $flags) = splice(@ARGV, 0, 2);
for (my $i = 0; $i < @ARGV; $i++) {
  my $r = syscall($nr + 0, $ARGV[$i], $flags + 0);
  if ($r != 0) { my $n = $! + 0; for my $k (keys %!) { if ($!{$k}) { print STDERR "$i $k
"; exit 1; } } print STDERR "$i E$n
"; exit 1; }
}
`;

/**
 * Performs the mounts in order, in one process. When one fails, those made before it are
 * unmounted again and it throws UnionError MOUNT_FAILED naming the errno and what was mounted.
 */
export function performMounts(mounts: readonly Mount[]): void {
  const nr = SYS_MOUNT[os.arch()];
  if (nr === undefined) return mountEachWithUtil(mounts);
  const args = mounts.flatMap(m => [m.source, m.target, m.type, String(m.options.includes('ro') ? MS_RDONLY : 0), m.options.filter(o => o !== 'ro').join(',')]);
  const r = spawnSync('perl', ['-e', PERL_MOUNT, String(nr), ...args], {encoding: 'utf8'});
  if (r.status === 0) return;
  const [at, errno] = r.stderr.trim().split(' ');
  const failed = Number(at);
  const m = mounts[failed];
  if (!m || !errno) throw new UnionError('MOUNT_FAILED', `cannot mount ${mounts.map(x => x.target).join(', ')}: ${r.error?.message ?? (r.stderr.trim() || 'perl failed')}`);
  // An erofs image file that this kernel will only mount from a block device: mount(8) with a loop device, then the rest.
  if (m.type === 'erofs' && errno === 'ENOTBLK') {
    try {
      mountEachWithUtil([m]);
      if (failed + 1 < mounts.length) performMounts(mounts.slice(failed + 1));
      return;
    } catch (err) {
      performUnmounts(mounts.slice(0, failed).map(x => x.target).reverse());
      throw err;
    }
  }
  performUnmounts(mounts.slice(0, failed).map(x => x.target).reverse());
  throw mountError(m, errno);
}

/** mount(8) for each (an erofs image through a loop device); a failure unmounts those made before it. */
function mountEachWithUtil(mounts: readonly Mount[]): void {
  mounts.forEach((m, i) => {
    const args = ['-t', m.type, '-o', [...m.options, ...(m.type === 'erofs' ? ['loop'] : [])].join(','), m.source, m.target];
    const r = spawnSync('mount', args, {encoding: 'utf8'});
    if (r.status === 0) return;
    performUnmounts(mounts.slice(0, i).map(x => x.target).reverse());
    throw mountError(m, r.error?.message ?? r.stderr.trim());
  });
}

function mountError(m: Mount, why: string): UnionError {
  const hint = why === 'EPERM' ? ' (mounting needs root)' : why === 'EINVAL' && m.type === 'overlay' ? ' (does this kernel take data-only lower layers, lowerdir=A::B? Linux 6.5 or later)' : '';
  return new UnionError('MOUNT_FAILED', `cannot mount ${m.type} on ${m.target}: ${why}${hint}`);
}

/** Unmounts `target` (with `lazy`, detaches it even while busy). Throws UnionError MOUNT_BUSY when a process still uses it. */
export function performUnmount(target: string, lazy = false): void {
  performUnmounts([target], lazy);
}

/**
 * Unmounts each target in order, in one process (umount2(2) from Perl; util-linux's
 * umount(8) where the architecture's number is not known). A target that is not (or no
 * longer) a mount point is fine: another strata process (rm --force beside the run that
 * mounted it) may have been first. Throws UnionError MOUNT_BUSY when a process still uses
 * one (with `lazy`, it is detached even then), MOUNT_FAILED otherwise.
 */
export function performUnmounts(targets: readonly string[], lazy = false): void {
  const nr = SYS_UMOUNT2[os.arch()];
  if (nr === undefined) {
    for (const target of targets) unmountWithUtil(target, lazy);
    return;
  }
  let rest = targets;
  while (rest.length > 0) {
    const r = spawnSync('perl', ['-e', PERL_UMOUNT, String(nr), String(lazy ? MNT_DETACH : 0), ...rest], {encoding: 'utf8'});
    if (r.status === 0) return;
    const [at, errno] = r.stderr.trim().split(' ');
    const target = rest[Number(at)];
    if (target === undefined || errno === undefined) throw new UnionError('MOUNT_FAILED', `cannot unmount ${rest.join(', ')}: ${r.error?.message ?? (r.stderr.trim() || 'perl failed')}`);
    // EINVAL: not a mount point (already unmounted); ENOENT: the mount point itself went.
    if (errno !== 'EINVAL' && errno !== 'ENOENT') {
      if (errno === 'EBUSY') throw new UnionError('MOUNT_BUSY', `${target} is busy: a process still has files open or its working directory there`);
      throw new UnionError('MOUNT_FAILED', `cannot unmount ${target}: ${errno}`);
    }
    rest = rest.slice(Number(at) + 1);
  }
}

function unmountWithUtil(target: string, lazy: boolean): void {
  const r = spawnSync('umount', [...(lazy ? ['-l'] : []), target], {encoding: 'utf8'});
  if (r.status === 0 || /not mounted|no mount point specified/.test(r.stderr)) return;
  if (/busy/i.test(r.stderr)) throw new UnionError('MOUNT_BUSY', `${target} is busy: a process still has files open or its working directory there`);
  throw new UnionError('MOUNT_FAILED', `cannot unmount ${target}: ${r.error?.message ?? r.stderr.trim()}`);
}
