import {compareNames} from '../objects/tree.js';
import {F_KIND, FIELDS, K_DIR, type Listing, errorData, failedListing} from './describeDirectory.js';

/** Where listings come from: the pool's threads, once they run. */
export interface Lister {
  readonly threaded: boolean;
  /** Threads that list (0 before they run). */
  readonly threads: number;
  list(dir: string, layerPath: string): Promise<Listing>;
}

interface Known {
  readonly dir: string;
  readonly layerPath: string;
  /** The layer path with a `/` after it: directories compare by it in the walk's order. */
  readonly key: string;
}

/**
 * The listings of the directories a depth-first walk enters next, asked of the hashing
 * threads ahead of it, in its order (byte order of the paths, a directory's name as if it
 * ended in `/`). Listings arrive in any order, so a directory met late can come before
 * ones asked already: the `ahead` (per thread) first directories not yet entered are
 * always asked, and at most twice that many wait asked and not entered, which bounds the
 * small files' bytes they hold (LISTING_HASH_BYTES each). The walk asks for a directory
 * it enters that is not asked yet at once. Before the threads run, the walk lists
 * directories itself (`here`), and once they run it lists the next ones nobody was asked
 * for while it would wait (`listAhead`).
 */
export class ListingQueue {
  /** Directories asked and not entered: of a thread, or listed here already (`here`). */
  private readonly asked = new Map<string, {readonly key: string; readonly listing: Promise<Listing>; readonly here?: true}>();
  /** Directories met in a listing and not asked for yet, sorted in the walk's order, the first one last. */
  private todo: Known[] = [];

  constructor(private readonly lister: Lister, private readonly ahead: number) {}

  /** The listing of the directory the walk enters now: asked already, asked now, or made here. */
  async take(dir: string, layerPath: string, here: () => Listing): Promise<Listing> {
    const asked = this.asked.get(dir);
    let listing: Promise<Listing>;
    if (asked) {
      this.asked.delete(dir);
      listing = asked.listing;
    } else {
      // Mostly the first one: the walk enters directories in the order of `todo`.
      let k = this.todo.length - 1;
      while (k >= 0 && this.todo[k]!.dir !== dir) k--;
      if (k >= 0) this.todo.splice(k, 1);
      if (this.lister.threaded) {
        listing = this.ask({dir, layerPath, key: `${layerPath}/`});
      } else {
        const made = here();
        this.met(dir, layerPath, made);
        return made;
      }
    }
    this.fill();
    return listing;
  }

  /**
   * Lists here, now, the first directory not entered yet that no thread was asked for, as a
   * thread would (`here`), while the walk would otherwise wait for a thread's listing: on 2
   * cores there is one hashing thread, and in an import of small files every file is read by
   * a listing, so the importing thread had nothing else to take and idled ~45 % of the walk
   * (docs/benchmarks.md, "fifth round"). Counts as asked in the bound of what waits (twice
   * `ahead` per thread), not in the threads' `ahead`. False when there is none to list.
   */
  listAhead(here: (dir: string, layerPath: string) => Listing): boolean {
    const ahead = this.ahead * this.lister.threads;
    if (!this.lister.threaded || this.todo.length === 0 || this.asked.size >= 2 * ahead) return false;
    const next = this.todo.pop()!;
    let listing: Listing;
    try {
      listing = here(next.dir, next.layerPath);
    } catch (err) {
      listing = failedListing(errorData(err)); // thrown when the walk enters it, as a thread's failure would be
    }
    if (!listing.error) this.met(next.dir, next.layerPath, listing);
    this.asked.set(next.dir, {key: next.key, listing: Promise.resolve(listing), here: true});
    return true;
  }

  /** Asks for the first directories not entered yet (see the class comment). */
  private fill(): void {
    const ahead = this.ahead * this.lister.threads;
    while (this.lister.threaded && this.todo.length > 0 && this.asked.size < 2 * ahead) {
      const next = this.todo[this.todo.length - 1]!;
      let before = 0;
      // Those listed here already are no thread's work: a thread still gets its `ahead`.
      for (const a of this.asked.values()) if (!a.here && compareNames(a.key, next.key) < 0) before++;
      if (before >= ahead) return;
      this.todo.pop();
      this.asked.set(next.dir, {key: next.key, listing: this.ask(next)});
    }
  }

  private ask(d: Known): Promise<Listing> {
    return this.lister.list(d.dir, d.layerPath).then(listing => {
      if (!listing.error) this.met(d.dir, d.layerPath, listing);
      this.fill();
      return listing;
    });
  }

  /** Puts a listing's subdirectories into `todo` at their place in the walk's order. */
  private met(dir: string, layerPath: string, listing: Listing): void {
    const subs: Known[] = [];
    const {numbers} = listing;
    const hostPrefix = dir === '/' ? '' : dir, layerPrefix = layerPath === '/' ? '' : layerPath;
    let from = 0;
    for (let i = 0; i < numbers.length / FIELDS; i++) {
      const end = listing.names.indexOf('\0', from);
      if (numbers[i * FIELDS + F_KIND] === K_DIR) {
        const name = listing.names.slice(from, end);
        subs.push({dir: `${hostPrefix}/${name}`, layerPath: `${layerPrefix}/${name}`, key: `${layerPrefix}/${name}/`});
      }
      from = end + 1;
    }
    if (subs.length === 0) return;
    // Nothing else known lies inside this directory, so its subdirectories go in as one
    // block, before the first known directory that comes after them (todo is sorted last-first).
    const first = subs[0]!.key;
    let lo = 0, hi = this.todo.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareNames(this.todo[mid]!.key, first) > 0) lo = mid + 1;
      else hi = mid;
    }
    subs.reverse();
    if (lo === this.todo.length) for (const s of subs) this.todo.push(s);
    else this.todo = this.todo.slice(0, lo).concat(subs, this.todo.slice(lo)); // splice(lo, 0, ...subs) overflows the stack past ~100,000
  }
}
