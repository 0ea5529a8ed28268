// The generated tree of the crash and concurrency tests.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/** The fixed mtime of every generated entry: the same seed gives the same layer, in any second. */
const MTIME = 1_700_000_000;

/** A tree of ~60 files: some shared by every seed, some its own, and a large one. */
export async function generateTree(at, seed) {
  await fs.mkdir(path.join(at, 'common'), {recursive: true});
  await fs.mkdir(path.join(at, 'own', 'deep'), {recursive: true});
  for (let i = 0; i < 20; i++) await fs.writeFile(path.join(at, 'common', `c${i}`), `shared file ${i}\n`.repeat(i + 1));
  for (let i = 0; i < 40; i++) await fs.writeFile(path.join(at, 'own', i % 2 ? 'deep' : '', `f${i}`), `seed ${seed} file ${i}\n`.repeat(10 + i));
  await fs.writeFile(path.join(at, 'own', 'large.bin'), Buffer.alloc(200_000 + (seed % 7) * 1000, seed % 251));
  // Children first, so setting a file's time does not move its directory's again.
  const paths = [];
  const walk = async dir => {
    for (const e of await fs.readdir(dir, {withFileTypes: true})) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      paths.push(p);
    }
  };
  await walk(at);
  for (const p of [...paths, at]) await fs.utimes(p, MTIME, MTIME);
}
