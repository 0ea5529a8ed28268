import type {ImageConfig} from '@strata/store';
import {UnionError} from '../errors.js';
import type {UnionView} from '../UnionView.js';
import {parseViewPath} from '../viewPath.js';

/** docker's default capability set (moby oci/caps/defaults.go), wider than `runc spec`'s three. */
const CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ProcessOptions {
  /** `-- CMD ARG...`: replaces the image's cmd (its entrypoint stays, as docker run does). */
  readonly command?: readonly string[];
  /** Give the process a terminal (`-t`). */
  readonly terminal?: boolean;
  readonly hostname: string;
}

/**
 * The OCI runtime spec (runtime-spec config.md) for a process in a mounted container:
 * the image config's entrypoint + cmd (or the given command), env (PATH added when the
 * image has none), working dir and user (names resolved in the container's own
 * /etc/passwd and /etc/group), with `runc spec`'s namespaces, mounts and masked paths
 * and docker's default capabilities. Throws RUN_FAILED for no command or an unknown user.
 */
export async function runtimeSpec(rootfs: string, config: ImageConfig, view: UnionView, options: ProcessOptions): Promise<object> {
  const args = [...(config.entrypoint ?? []), ...(options.command ?? config.cmd ?? [])];
  if (args.length === 0) throw new UnionError('RUN_FAILED', 'the image has no entrypoint or cmd; give a command after --');
  const env = [...(config.env ?? [])];
  if (!env.some(e => e.startsWith('PATH='))) env.unshift(DEFAULT_PATH);
  if (options.terminal && !env.some(e => e.startsWith('TERM='))) env.push('TERM=xterm');
  const user = await resolveUser(view, config.user ?? '');
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: options.terminal === true,
      user,
      args,
      env,
      cwd: config.workingDir || '/',
      capabilities: {bounding: CAPABILITIES, effective: CAPABILITIES, permitted: CAPABILITIES},
      rlimits: [{type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024}],
      noNewPrivileges: true,
    },
    root: {path: rootfs, readonly: false},
    hostname: options.hostname,
    mounts: [
      {destination: '/proc', type: 'proc', source: 'proc'},
      {destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k']},
      {destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']},
      {destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k']},
      {destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev']},
      {destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro']},
      {destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro']},
    ],
    linux: {
      resources: {devices: [{allow: false, access: 'rwm'}]},
      namespaces: [{type: 'pid'}, {type: 'network'}, {type: 'ipc'}, {type: 'uts'}, {type: 'mount'}],
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** `user`, `uid`, `user:group`, `uid:gid` (OCI image config) to numbers, by the container's own files. */
export async function resolveUser(view: UnionView, spec: string): Promise<{uid: number; gid: number}> {
  if (spec === '') return {uid: 0, gid: 0};
  const [u, g] = spec.split(':', 2) as [string, string | undefined];
  const passwd = await table(view, '/etc/passwd');
  const byName = passwd.find(f => f[0] === u);
  const uid = /^\d+$/.test(u) ? Number(u) : byName ? Number(byName[2]) : undefined;
  if (uid === undefined) throw new UnionError('RUN_FAILED', `the image's user "${u}" is not in the container's /etc/passwd`);
  let gid: number | undefined;
  if (g === undefined) gid = Number((byName ?? passwd.find(f => Number(f[2]) === uid))?.[3] ?? 0);
  else if (/^\d+$/.test(g)) gid = Number(g);
  else {
    const group = (await table(view, '/etc/group')).find(f => f[0] === g);
    if (!group) throw new UnionError('RUN_FAILED', `the image's group "${g}" is not in the container's /etc/group`);
    gid = Number(group[2]);
  }
  return {uid, gid};
}

async function table(view: UnionView, p: string): Promise<string[][]> {
  try {
    return (await view.readFile(parseViewPath(p))).toString('utf8').split('\n').filter(l => l && !l.startsWith('#')).map(l => l.split(':'));
  } catch (err) {
    if (err instanceof UnionError && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return [];
    throw err;
  }
}
