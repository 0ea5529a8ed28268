// The generated tree of the crash and concurrency tests.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/** A tree of ~60 files: some shared by every seed, some its own, and a large one. */
export async function generateTree(at, seed) {
  await fs.mkdir(path.join(at, 'common'), {recursive: true});
  await fs.mkdir(path.join(at, 'own', 'deep'), {recursive: true});
  for (let i = 0; i < 20; i++) await fs.writeFile(path.join(at, 'common', `c${i}`), `shared file ${i}\n`.repeat(i + 1));
  for (let i = 0; i < 40; i++) await fs.writeFile(path.join(at, 'own', i % 2 ? 'deep' : '', `f${i}`), `seed ${seed} file ${i}\n`.repeat(10 + i));
  await fs.writeFile(path.join(at, 'own', 'large.bin'), Buffer.alloc(200_000 + (seed % 7) * 1000, seed % 251));
}

