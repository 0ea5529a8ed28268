import {type ChildProcessWithoutNullStreams, spawn} from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import type {Socket} from 'node:net';
import {fsError, UnionError} from '../errors.js';

/**
 * Does the writes of a strata command in a mounted container through the mount, so the
 * kernel, which owns the upper while it is mounted, does the copy-ups and whiteouts
 * itself (overlayfs: changes to an upper behind a mounted overlay are undefined).
 *
 * The writes run in a Perl process chrooted into the mount (perl-base is essential in
 * Debian; Node cannot chroot): a path resolves there exactly as the container's own
 * processes see it, and a symlink that a process swaps in cannot lead strata's write out
 * onto the host. One request per line (op, hex arguments; `write` is followed by its
 * bytes), one answer per line: `ok` or `err ERRNO`. A lower directory that rename(2)
 * refuses with EXDEV (no redirect_dir) is moved as strata's own view moves it: made anew,
 * its entries moved one by one, its metadata kept, the old one removed.
 */
const DRIVER = String.raw`
use strict; use warnings; use Errno; use Fcntl ':mode'; use POSIX ();
my $root = shift;
my $lsetxattr = shift;
chroot($root) or die "chroot $root: $!\n";
chdir('/') or die "chdir: $!\n";
umask(0);
$| = 1;
binmode(STDIN);
sub errname { for my $k (keys %!) { return $k if $!{$k}; } return 'EIO'; }
sub rmtree {
  my $p = shift;
  lstat($p) or return 0;
  if (-d _) {
    opendir(my $d, $p) or return 0;
    my @names = grep { $_ ne '.' && $_ ne '..' } readdir($d);
    closedir($d);
    for my $n (@names) { rmtree("$p/$n") or return 0; }
    return rmdir($p);
  }
  return unlink($p);
}
sub movetree {
  my ($from, $to) = @_;
  my @st = lstat($from) or return 0;
  if (lstat($to)) { rmdir($to) or return 0; }
  mkdir($to, 0700) or return 0;
  opendir(my $d, $from) or return 0;
  my @names = grep { $_ ne '.' && $_ ne '..' } readdir($d);
  closedir($d);
  for my $n (@names) {
    next if rename("$from/$n", "$to/$n");
    return 0 unless $!{EXDEV};
    movetree("$from/$n", "$to/$n") or return 0;
  }
  chown($st[4], $st[5], $to) or return 0;
  chmod($st[2] & 07777, $to) or return 0;
  rmdir($from) or return 0;
  return utime($st[8], $st[9], $to);
}
while (my $line = <STDIN>) {
  chomp $line;
  my ($op, @a) = split(/ /, $line, -1);
  @a = map { pack('H*', $_) } @a;
  my $ok = 0;
  if ($op eq 'write') {
    my ($p, $mode, $len) = @a;
    my $data = '';
    while (length($data) < $len) { my $n = read(STDIN, $data, $len - length($data), length($data)); last if !$n; }
    my @st = stat($p);
    if (@st && S_ISDIR($st[2])) { $! = Errno::EISDIR; }
    elsif (@st && !S_ISREG($st[2])) { $! = Errno::EINVAL; }
    elsif (open(my $f, '>:raw', $p)) { $ok = (print $f $data) && close($f); $ok = chmod($mode + 0, $p) if $ok && !@st; }
  }
  elsif ($op eq 'mkdir') { $ok = mkdir($a[0], $a[1] + 0); }
  elsif ($op eq 'rm') { if (lstat($a[0])) { $ok = -d _ ? rmdir($a[0]) : unlink($a[0]); } }
  elsif ($op eq 'rmr') { $ok = rmtree($a[0]); }
  elsif ($op eq 'rename') { $ok = rename($a[0], $a[1]); $ok = movetree($a[0], $a[1]) if !$ok && $!{EXDEV}; }
  elsif ($op eq 'symlink') { $ok = symlink($a[0], $a[1]); }
  elsif ($op eq 'link') { $ok = link($a[0], $a[1]); }
  elsif ($op eq 'chmod') { $ok = chmod($a[1] + 0, $a[0]); }
  elsif ($op eq 'chown') { $ok = chown($a[1] + 0, $a[2] + 0, $a[0]); }
  elsif ($op eq 'lchown') { $ok = POSIX::lchown($a[1] + 0, $a[2] + 0, $a[0]); }
  elsif ($op eq 'setxattr') {
    if ($lsetxattr < 0) { $! = Errno::EOPNOTSUPP; }
    else { $ok = syscall($lsetxattr, $a[0], $a[1], $a[2], length($a[2]), 0) == 0; }
  }
  elsif ($op eq 'utime') { $ok = utime($a[1] + 0, $a[1] + 0, $a[0]); }
  else { die "unknown op $op\n"; }
  print $ok ? "ok\n" : 'err ' . errname() . "\n";
}
`;

/** The errno codes a view's write may give, as UnionErrors name them. */
const KNOWN = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'EEXIST', 'ENOTEMPTY', 'EINVAL', 'ELOOP', 'EPERM', 'EROFS', 'EBUSY']);

/** lsetxattr(2)'s number per architecture (Perl has no xattr call; `syscall` reaches it). */
const SYS_LSETXATTR: Partial<Record<string, number>> = {x64: 189, arm64: 6, riscv64: 6, ia32: 227, arm: 227, ppc64: 210, s390x: 225};

export class MountWriter {
  private child: ChildProcessWithoutNullStreams | undefined;
  private answers: string[] = [];
  private waiting: ((line: string) => void)[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private stderr = '';

  constructor(readonly mountPoint: string) {}

  writeFile(p: string, data: Buffer | {readonly hostFile: string}, mode: number): Promise<void> {
    const bytes = Buffer.isBuffer(data) ? data : fs.readFileSync(data.hostFile);
    return this.ask('write', [p, String(mode), String(bytes.length)], bytes, 'open', p);
  }

  mkdir(p: string, mode: number): Promise<void> { return this.ask('mkdir', [p, String(mode)], undefined, 'mkdir', p); }
  remove(p: string, recursive: boolean): Promise<void> { return this.ask(recursive ? 'rmr' : 'rm', [p], undefined, 'rm', p); }
  rename(from: string, to: string): Promise<void> { return this.ask('rename', [from, to], undefined, 'rename', from); }
  symlink(target: string, p: string): Promise<void> { return this.ask('symlink', [target, p], undefined, 'symlink', p); }
  link(existing: string, p: string): Promise<void> { return this.ask('link', [existing, p], undefined, 'link', p); }
  chmod(p: string, mode: number): Promise<void> { return this.ask('chmod', [p, String(mode)], undefined, 'chmod', p); }
  chown(p: string, uid: number, gid: number): Promise<void> { return this.ask('chown', [p, String(uid), String(gid)], undefined, 'chown', p); }
  lchown(p: string, uid: number, gid: number): Promise<void> { return this.ask('lchown', [p, String(uid), String(gid)], undefined, 'lchown', p); }
  setXattr(p: string, name: string, value: Buffer): Promise<void> { return this.ask('setxattr', [p, name, value], undefined, 'setxattr', p); }
  utimes(p: string, mtime: number): Promise<void> { return this.ask('utime', [p, String(mtime)], undefined, 'utime', p); }

  /** Ends the chrooted process, which keeps the mount busy while it lives (it also ends when strata exits). */
  async close(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise(resolve => child.once('close', resolve));
    child.stdin.end();
    await exited;
  }

  private start(): ChildProcessWithoutNullStreams {
    const child = spawn('perl', ['-e', DRIVER, this.mountPoint, String(SYS_LSETXATTR[os.arch()] ?? -1)], {stdio: ['pipe', 'pipe', 'pipe']}) as ChildProcessWithoutNullStreams;
    let buffered = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buffered += d;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const w = this.waiting.shift();
        if (w) w(line);
        else this.answers.push(line);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { this.stderr += d; });
    child.on('close', () => {
      for (const w of this.waiting.splice(0)) w(`died ${this.stderr.trim()}`);
    });
    this.idle(child);
    return child;
  }

  /** The driver must not keep strata alive between requests, nor let it exit during one. */
  private idle(child: ChildProcessWithoutNullStreams, busy = false): void {
    for (const s of [child.stdin, child.stdout, child.stderr] as unknown as Socket[]) busy ? s.ref?.() : s.unref?.();
    busy ? child.ref() : child.unref();
  }

  private ask(op: string, args: readonly (string | Buffer)[], body: Buffer | undefined, syscall: string, p: string): Promise<void> {
    const run = async () => {
      this.child ??= this.start();
      const child = this.child;
      this.idle(child, true);
      try {
        const answer = new Promise<string>(resolve => {
          const ready = this.answers.shift();
          if (ready !== undefined) resolve(ready);
          else this.waiting.push(resolve);
        });
        child.stdin.write(`${[op, ...args.map(a => Buffer.from(a).toString('hex'))].join(' ')}\n`);
        if (body) child.stdin.write(body);
        const line = await answer;
        if (line === 'ok') return;
        if (line.startsWith('err ')) {
          const code = line.slice(4);
          if (KNOWN.has(code)) throw fsError(code as 'ENOENT', syscall, p);
          throw new UnionError('EPERM', `${code}: ${syscall} '${p}' through the mount`, {syscall, path: p});
        }
        throw new UnionError('MOUNT_FAILED', `the process writing through the mount ${this.mountPoint} ended: ${line.slice(5)}`);
      } finally {
        this.idle(child);
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }
}
