import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {setAttributeSync} from '@napi-rs/xattr';
import type {Digest, Store, Tree} from '@strata/store';
import type {MetaImageBuilder} from '../src/ContainerLayers.js';
import {run} from './_helpers.js';

/**
 * A reference metadata image made the slow way the research measured (a skeleton
 * directory with the composefs xattrs, then Debian's mkfs.erofs): small files inline,
 * large ones as sparse files redirected into the objects. For tests of the mount
 * machinery; strata's own builder writes EROFS itself.
 */
export const skeletonMetaImage: MetaImageBuilder = async (store: Store, tree: Digest) => {
  const image = path.join(store.dir, 'tmp', `meta-${tree.slice(3, 19)}.erofs`);
  if (fs.existsSync(image)) return image;
  const skel = fs.mkdtempSync(path.join(store.dir, 'tmp', 'skel-'));
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
            fs.chmodSync(p, sub.mode);
            fs.lchownSync(p, sub.uid, sub.gid);
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
        fs.chmodSync(p, e.mode);
        fs.lchownSync(p, e.uid, e.gid);
        times.push([p, e.mtime]);
      }
    };
    const root = await store.getTree(tree);
    await walk(root, skel);
    fs.chmodSync(skel, root.mode);
    fs.lchownSync(skel, root.uid, root.gid);
    times.push([skel, root.mtime]);
    for (const [p, m] of times) fs.utimesSync(p, m, m);
    const r = spawnSync('mkfs.erofs', ['--quiet', '--chunksize=4096', `${image}.tmp`, skel], {encoding: 'utf8'});
    if (r.status !== 0) throw new Error(`mkfs.erofs failed (erofs-utils): ${r.error?.message ?? r.stderr}`);
    fs.renameSync(`${image}.tmp`, image);
    return image;
  } finally {
    fs.rmSync(skel, {recursive: true, force: true});
  }
};
