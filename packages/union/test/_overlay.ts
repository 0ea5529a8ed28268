import {type ChildProcessWithoutNullStreams, spawn, spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {createInterface} from 'node:readline';
import type {ExecutionContext} from 'ava';
import {type Info, type LayerSpec, type Outcome, type Step, type Subject, hostTree, run, tempDir, writeLayerDir} from './_helpers.js';

/**
 * Does the steps inside the mount, chrooted, so that absolute symlink targets and ".."
 * resolve as a container sees them and never reach the host. Perl is in every Debian
 * (perl-base is essential) and can chroot in-process, which node cannot. One request per
 * line: an op and hex arguments; one answer per line: "ok <hex>" or "err <ERRNO>".
 * A directory rename refused with EXDEV (overlayfs without redirect_dir) is done as
 * tools do it: make the new directory, move each entry (recursing into directories the
 * kernel will not rename), give it the old one's mode and owner, remove the old one.
 * A recursive removal of a path ending in "." or ".." is refused as rm -r refuses it,
 * before anything inside is removed, with the error rmdir(2) gives for it.
 */
const DRIVER = String.raw`
use strict; use warnings; use Errno; use Fcntl ':mode';
my $root = shift;
chroot($root) or die "chroot $root: $!\n";
chdir('/') or die "chdir: $!\n";
umask(022);
$| = 1;
my $exdev = 0;
sub errname { my $n = $! + 0; for my $k (keys %!) { return $k if $!{$k}; } return "E$n"; }
sub kind { my $m = shift; return S_ISDIR($m) ? 'dir' : S_ISLNK($m) ? 'symlink' : S_ISREG($m) ? 'file' : S_ISCHR($m) ? 'char' : S_ISBLK($m) ? 'block' : 'fifo'; }
sub info { my @s = @_; my $k = kind($s[2]); return join(' ', $k, $s[2] & 07777, $s[4], $s[5], $k eq 'file' ? $s[7] : 0, $s[9]); }
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
  return rmdir($from);
}
while (my $line = <STDIN>) {
  chomp $line;
  my ($op, @a) = split(/ /, $line, -1);
  @a = map { pack('H*', $_) } @a;
  my ($ok, $v) = (0, '');
  if ($op eq 'write') { if (open(my $f, '>:raw', $a[0])) { $ok = (print $f $a[1]) && close($f); } }
  elsif ($op eq 'mkdir') { $ok = mkdir($a[0], 0755); }
  elsif ($op eq 'rm') { if (lstat($a[0])) { $ok = -d _ ? rmdir($a[0]) : unlink($a[0]); } }
  elsif ($op eq 'rmr') { $ok = $a[0] =~ m{(?:^|/)\.\.?$} ? rmdir($a[0]) : rmtree($a[0]); }
  elsif ($op eq 'rename') {
    $ok = rename($a[0], $a[1]);
    if (!$ok && $!{EXDEV}) { $ok = movetree($a[0], $a[1]); $exdev++ if $ok; }
  }
  elsif ($op eq 'rename0') { $ok = rename($a[0], $a[1]); }
  elsif ($op eq 'symlink') { $ok = symlink($a[0], $a[1]); }
  elsif ($op eq 'link') { $ok = link($a[0], $a[1]); }
  elsif ($op eq 'chmod') { $ok = chmod($a[1] + 0, $a[0]); }
  elsif ($op eq 'chown') { $ok = chown($a[1] + 0, $a[2] + 0, $a[0]); }
  elsif ($op eq 'utimes') { $ok = utime($a[1] + 0, $a[1] + 0, $a[0]); }
  elsif ($op eq 'read') {
    if (open(my $f, '<:raw', $a[0])) {
      $ok = 1;
      while (1) { my $n = sysread($f, my $chunk, 65536); if (!defined $n) { $ok = 0; last; } last if $n == 0; $v .= $chunk; }
    }
  }
  elsif ($op eq 'lstat') { my @s = lstat($a[0]); if (@s) { $ok = 1; $v = info(@s); } }
  elsif ($op eq 'stat') { my @s = stat($a[0]); if (@s) { $ok = 1; $v = info(@s); } }
  elsif ($op eq 'readdir') { if (opendir(my $d, $a[0])) { $ok = 1; $v = join('/', sort grep { $_ ne '.' && $_ ne '..' } readdir($d)); closedir($d); } }
  elsif ($op eq 'readlink') { my $t = readlink($a[0]); if (defined $t) { $ok = 1; $v = $t; } }
  elsif ($op eq 'exdev') { $ok = 1; $v = $exdev; }
  else { die "unknown op $op\n"; }
  print $ok ? 'ok ' . unpack('H*', $v) . "\n" : 'err ' . errname() . "\n";
}
`;

/** Fails loudly (never skips): CI runs as root with overlayfs, and so must anyone proving the view. */
export function requireOverlay(): void {
  if (process.getuid?.() !== 0) throw new Error('the kernel overlayfs comparison needs root (CI runs as root)');
  if (!fs.readFileSync('/proc/filesystems', 'utf8').split('\n').some(l => l.trim().endsWith('overlay')))
    throw new Error('the kernel has no overlayfs (try modprobe overlay)');
}

/** Each spec as a lower directory in overlayfs form (bottom first); lowers can serve many mounts. */
export function overlayLowers(t: ExecutionContext, stack: readonly LayerSpec[]): string[] {
  requireOverlay();
  const base = tempDir(t, 'strata-lowers-');
  return stack.map((spec, i) => {
    const dir = path.join(base, `L${i}`);
    fs.mkdirSync(dir);
    writeLayerDir(dir, spec, 'overlay');
    return dir;
  });
}

/**
 * Mounts overlayfs over `lowers` (bottom first) with a fresh upper (or `options.upper`, an
 * existing one, e.g. the writable layer strata wrote), and returns it as a Subject. redirect_dir, index and metacopy are off (the kernel defaults here, stated so
 * a different default cannot change the comparison). Unmounted when the test ends.
 */
export interface KernelSubject extends Subject {
  /** Stops the driver and unmounts (also done when the test ends). */
  close(): Promise<void>;
  /** rename(2) alone, with no EXDEV fallback. */
  renameNoFallback(from: string, to: string): Promise<Outcome>;
}

export async function kernelSubject(t: ExecutionContext, lowers: readonly string[], options: {upper?: string} = {}): Promise<KernelSubject> {
  requireOverlay();
  const base = tempDir(t, 'strata-overlay-');
  const [fresh, work, merged] = ['upper', 'work', 'merged'].map(n => path.join(base, n)) as [string, string, string];
  for (const d of [fresh, work, merged]) fs.mkdirSync(d);
  fs.utimesSync(fresh, 1_700_000_000, 1_700_000_000);
  const upper = options.upper ?? fresh;
  const mountOptions = `lowerdir=${[...lowers].reverse().join(':')},upperdir=${upper},workdir=${work},redirect_dir=off,index=off,metacopy=off`;
  run('mount', ['-t', 'overlay', 'overlay', '-o', mountOptions, merged]);
  return chrootedSubject(t, 'kernel overlayfs', merged, () => {
    if (spawnSync('umount', [merged]).status !== 0) run('umount', ['-l', merged]);
  });
}

/**
 * The steps done by the Perl driver chrooted into `root` (any mounted container root), as
 * a Subject; `unmount` runs when it is closed (also when the test ends).
 */
export function chrootedSubject(t: ExecutionContext, name: string, root: string, unmount: () => void | Promise<void>): KernelSubject {
  const merged = root;
  const driver = spawn('perl', ['-e', DRIVER, merged], {stdio: ['pipe', 'pipe', 'pipe']}) as ChildProcessWithoutNullStreams;
  const exited = new Promise<void>(resolve => driver.on('close', () => resolve()));
  let stderr = '';
  driver.stderr.setEncoding('utf8').on('data', d => { stderr += d; });
  let closed: Promise<void> | undefined;
  const close = () => closed ??= (async () => {
    driver.stdin.end();
    await exited;
    await unmount();
  })();
  t.teardown(close);
  const answers = createInterface({input: driver.stdout})[Symbol.asyncIterator]();
  let queue = Promise.resolve();
  const ask = (op: string, args: readonly string[]): Promise<string> => {
    const answer = queue.then(async () => {
      driver.stdin.write(`${[op, ...args.map(a => Buffer.from(a).toString('hex'))].join(' ')}\n`);
      const next = await answers.next();
      if (next.done) throw new Error(`the overlay driver exited: ${stderr.trim()}`);
      return next.value;
    });
    queue = answer.then(() => undefined, () => undefined);
    return answer;
  };
  let exdevFallbacks = 0;
  return {
    name,
    get exdevFallbacks() { return exdevFallbacks; },
    async run(step: Step): Promise<Outcome> {
      const [op, ...args] = step;
      const line = await ask(op, args.map(String));
      const [status, value = ''] = line.split(' ');
      if (status === 'err') return {err: value};
      const text = Buffer.from(value, 'hex').toString('utf8');
      if (op === 'rename') exdevFallbacks = Number(Buffer.from((await ask('exdev', [])).split(' ')[1]!, 'hex').toString());
      switch (op) {
        case 'read': case 'readlink': return {ok: text};
        case 'readdir': return {ok: text === '' ? [] : text.split('/').sort()};
        case 'lstat': case 'stat': {
          const [kind, mode, uid, gid, size, mtime] = text.split(' ');
          const info: Info = {kind: kind!, mode: Number(mode), uid: Number(uid), gid: Number(gid), size: Number(size), mtime: Number(mtime)};
          return {ok: info};
        }
        default: return {ok: null};
      }
    },
    tree: async () => hostTree(merged),
    close,
    async renameNoFallback(from: string, to: string): Promise<Outcome> {
      const [status, value = ''] = (await ask('rename0', [from, to])).split(' ');
      return status === 'err' ? {err: value} : {ok: null};
    },
  };
}
