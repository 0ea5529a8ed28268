import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {createRequire} from 'node:module';
import type {Digest, Store, Tree} from '@strata/store';
import type {MetaImageBuilder} from '../ContainerLayers.js';
import {UnionError} from '../errors.js';

/** @napi-rs/xattr, loaded when this builder runs: loading it costs every command that imports the union ~5 ms. */
let xattrAddon: typeof import('@napi-rs/xattr') | undefined;
const xattr = () => (xattrAddon ??= createRequire(import.meta.url)('@napi-rs/xattr') as typeof import('@napi-rs/xattr'));

function run(cmd: string, args: readonly string[]): void {
  const r = spawnSync(cmd, args, {encoding: 'utf8'});
  if (r.status !== 0) throw new UnionError('MOUNT_FAILED', `${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
}

/** Where the metadata image of a merged tree lives: derived data, rebuilt when missing, collected by gc when no image has the tree. */
export function metaImagePath(store: Store, tree: Digest): string {
  return path.join(store.dir, 'meta', `${tree.slice(3)}.erofs`);
}

/**
 * The metadata image of a merged tree, made the way the research measured (a skeleton
 * directory with the composefs xattrs, then Debian's mkfs.erofs, erofs-utils): blobs kept
 * in the index (16 KiB or less) inline, larger ones as sparse files whose
 * `trusted.overlay.redirect` names their object file. mkfs.erofs 1.5 is slow (about 3 s
 * per 5,000 files), so this stands in until strata writes EROFS itself, and stays the
 * reference the tests compare with. Memoised by the tree's digest; written to tmp/,
 * synced, renamed into `meta/`, so a half-written image is never used.
 */
export const mkfsMetaImage: MetaImageBuilder = async (store: Store, tree: Digest) => {
  const image = metaImagePath(store, tree);
  if (fs.existsSync(image)) return {path: image, packs: []};
  const skel = store.tmpPath('skeleton');
  const tmpImage = store.tmpPath('meta');
  fs.mkdirSync(skel);
  try {
    const times: [string, number][] = [];
    const firstLink = new Map<string, string>();
    const walk = async (t: Tree, dir: string) => {
      for (const e of t.entries) {
        const p = path.join(dir, e.name);
        switch (e.kind) {
          case 'dir': {
            fs.mkdirSync(p);
            const sub = await store.getTree(e.tree);
            await walk(sub, p);
            fs.lchownSync(p, sub.uid, sub.gid); // the owner first: chown clears setuid and setgid
            fs.chmodSync(p, sub.mode);
            times.push([p, sub.mtime]);
            continue;
          }
          case 'file': case 'hardlink': {
            const key = e.kind === 'hardlink' ? e.target : `/${path.relative(skel, p)}`;
            const first = firstLink.get(key);
            if (first) { fs.linkSync(first, p); continue; }
            firstLink.set(key, p);
            const {inline} = await store.statBlob(e.blob);
            if (inline) fs.writeFileSync(p, await store.readBlob(e.blob));
            else {
              fs.writeFileSync(p, '');
              fs.truncateSync(p, e.size);
              const {setAttributeSync} = xattr();
              setAttributeSync(p, 'trusted.overlay.metacopy', Buffer.alloc(0));
              setAttributeSync(p, 'trusted.overlay.redirect', `/b3/${e.blob.slice(3, 5)}/${e.blob.slice(5)}`);
            }
            break;
          }
          case 'symlink':
            fs.symlinkSync(e.target, p);
            fs.lchownSync(p, e.uid, e.gid);
            fs.lutimesSync(p, e.mtime, e.mtime);
            continue;
          case 'char': case 'block':
            run('mknod', [p, e.kind === 'char' ? 'c' : 'b', String(e.devmajor), String(e.devminor)]);
            break;
          case 'fifo':
            run('mknod', [p, 'p']);
            break;
          case 'whiteout':
            continue;
        }
        fs.lchownSync(p, e.uid, e.gid); // the owner first: chown clears setuid and setgid
        fs.chmodSync(p, e.mode);
        times.push([p, e.mtime]);
      }
    };
    const root = await store.getTree(tree);
    await walk(root, skel);
    fs.lchownSync(skel, root.uid, root.gid);
    fs.chmodSync(skel, root.mode);
    times.push([skel, root.mtime]);
    for (const [p, m] of times) fs.utimesSync(p, m, m);
    const r = spawnSync('mkfs.erofs', ['--quiet', '--chunksize=4096', tmpImage, skel], {encoding: 'utf8'});
    if (r.status !== 0) throw new UnionError('MOUNT_FAILED', `mkfs.erofs (Debian erofs-utils) failed: ${r.error?.message ?? r.stderr.trim()}`);
    const fd = fs.openSync(tmpImage, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.mkdirSync(path.dirname(image), {recursive: true});
    fs.renameSync(tmpImage, image);
    return {path: image, packs: []};
  } finally {
    fs.rmSync(skel, {recursive: true, force: true});
    fs.rmSync(tmpImage, {force: true});
  }
};
