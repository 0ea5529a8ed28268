import {createHash} from 'node:crypto';
import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The applets the tests' tiny images link to busybox. */
const APPLETS = ['sh', 'echo', 'cat', 'ls', 'id', 'sleep', 'rm', 'mv', 'chmod', 'touch', 'find', 'pwd', 'true', 'mkdir', 'stat', 'sha256sum', 'head', 'wc'];

/** Fails loudly (never skips) when a peer the container tests need is missing. */
export function requirePeers(...programs: string[]): void {
  if (process.getuid?.() !== 0) throw new Error('mounting and running containers needs root (CI runs as root)');
  for (const p of programs)
    if (spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0)
      throw new Error(`${p} is not installed (scripts/setup.js installs it from Debian)`);
}

/**
 * A tiny root filesystem: Debian's static busybox (busybox-static) and its applets as
 * symlinks, /etc/passwd and /etc/group with root and app (1000:1000), and `extra` files.
 */
export function busyboxRoot(dir: string, extra: Record<string, string> = {}): string {
  requirePeers('busybox');
  const busybox = spawnSync('sh', ['-c', 'command -v busybox'], {encoding: 'utf8'}).stdout.trim();
  // Debian's busybox-static: a container has no libc to load a dynamic one.
  if (/=>/.test(spawnSync('ldd', [busybox], {encoding: 'utf8'}).stdout ?? '')) throw new Error(`${busybox} is dynamically linked; install Debian busybox-static`);
  for (const d of ['bin', 'etc', 'srv', 'tmp']) fs.mkdirSync(path.join(dir, d), {recursive: true});
  fs.copyFileSync(fs.realpathSync(busybox), path.join(dir, 'bin', 'busybox'));
  fs.chmodSync(path.join(dir, 'bin', 'busybox'), 0o755);
  for (const a of APPLETS) fs.symlinkSync('busybox', path.join(dir, 'bin', a));
  fs.writeFileSync(path.join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/srv:/bin/sh\n');
  fs.writeFileSync(path.join(dir, 'etc', 'group'), 'root:x:0:\napp:x:1000:\n');
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777);
  for (const [rel, content] of Object.entries(extra)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), {recursive: true});
    fs.writeFileSync(path.join(dir, rel), content);
  }
  return dir;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** An OCI image layout of one layer (a tar of `root`) with the given image config (OCI image-spec config.md). */
export function ociLayoutOf(root: string, layout: string, config: Record<string, unknown>): string {
  fs.mkdirSync(path.join(layout, 'blobs', 'sha256'), {recursive: true});
  const put = (b: Buffer) => {
    const d = sha256(b);
    fs.writeFileSync(path.join(layout, 'blobs', 'sha256', d.slice(7)), b);
    return {digest: d, size: b.length};
  };
  const tar = spawnSync('tar', ['-C', root, '--sort=name', '--numeric-owner', '-c', '.'], {maxBuffer: 256 * 1024 * 1024});
  if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
  const layer = put(tar.stdout);
  const cfg = put(Buffer.from(JSON.stringify({architecture: 'amd64', os: 'linux', config, rootfs: {type: 'layers', diff_ids: [layer.digest]}})));
  const manifest = put(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg},
    layers: [{mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer}],
  })));
  fs.writeFileSync(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify({schemaVersion: 2, manifests: [{mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest}]}));
  return layout;
}
