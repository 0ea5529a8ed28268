import {createHash} from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {gzipSync} from 'node:zlib';
import * as tar from 'tar-stream';

/** One member of a test tar; `type` defaults to a file. */
export interface TarEntry {
  readonly name: string;
  readonly type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  readonly content?: string | Buffer;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly mtime?: number;
  readonly linkname?: string;
  readonly devmajor?: number;
  readonly devminor?: number;
  readonly pax?: Record<string, string>;
}

/** The bytes of a tar holding `entries` in order (tar-stream's pack, names taken as given). */
export async function tarBytes(entries: readonly TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => { pack.on('end', resolve); pack.on('error', reject); });
  for (const e of entries) {
    const body = e.content === undefined ? undefined : Buffer.from(e.content);
    await new Promise<void>((resolve, reject) => {
      pack.entry({
        name: e.name, type: e.type ?? 'file', mode: (e.mode ?? (e.type === 'directory' ? 0o755 : 0o644)) | 0o100000, uid: e.uid ?? 0, gid: e.gid ?? 0,
        mtime: new Date((e.mtime ?? 1_700_000_000) * 1000), ...(e.linkname !== undefined ? {linkname: e.linkname} : {}),
        devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0, ...(e.pax ? {pax: e.pax} : {}), ...(body ? {size: body.length} : {}),
      } as tar.Headers, body ?? Buffer.alloc(0), err => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A hand-made ustar header (for sizes and shapes tar-stream's pack refuses to write). */
export function rawHeader(name: string, size: number, typeflag = '0'): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100, 'utf8');
  b.write('0000644\0', 100); b.write('0000000\0', 108); b.write('0000000\0', 116);
  b.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  b.write('14500000000\0', 136);
  b.write('        ', 148);
  b.write(typeflag, 156);
  b.write('ustar\0', 257); b.write('00', 263);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return b;
}

export const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface LayoutOptions {
  /** gzip the layer blobs (their DiffIDs stay the plain tars'). */
  readonly gzip?: boolean;
  readonly refName?: string;
  /** Replaces the DiffIDs the config lists. */
  readonly diffIds?: readonly string[];
  readonly config?: Record<string, unknown>;
}

/**
 * Writes an OCI image layout with one image of these layer tars, every digest right
 * (unless the test breaks one afterwards). Returns the layout's blob paths.
 */
export async function writeLayout(dir: string, tars: readonly Buffer[], options: LayoutOptions = {}): Promise<{manifest: string; config: string; layers: string[]}> {
  const blobs = path.join(dir, 'blobs', 'sha256');
  await fs.mkdir(blobs, {recursive: true});
  const put = async (b: Buffer) => {
    const d = sha256(b);
    await fs.writeFile(path.join(blobs, d.slice(7)), b);
    return {digest: d, size: b.length, file: path.join(blobs, d.slice(7))};
  };
  const layers = [];
  for (const t of tars) layers.push({...(await put(options.gzip ? gzipSync(t) : t)), mediaType: `application/vnd.oci.image.layer.v1.tar${options.gzip ? '+gzip' : ''}`});
  const config = await put(Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: {Env: ['A=1'], Cmd: ['sh']}, ...options.config,
    rootfs: {type: 'layers', diff_ids: options.diffIds ?? tars.map(sha256)},
  })));
  const manifest = await put(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size},
    layers: layers.map(l => ({mediaType: l.mediaType, digest: l.digest, size: l.size})),
  })));
  await fs.writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await fs.writeFile(path.join(dir, 'index.json'), JSON.stringify({schemaVersion: 2, manifests: [{
    mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifest.digest, size: manifest.size,
    annotations: {'org.opencontainers.image.ref.name': options.refName ?? 'test:1'},
  }]}));
  return {manifest: manifest.file, config: config.file, layers: layers.map(l => l.file)};
}
