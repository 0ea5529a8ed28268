import type {LayerBuilder, LeafEntry} from './LayerBuilder.js';

interface Member {
  readonly parts: string[];
  readonly entry: LeafEntry;
}

/**
 * The hardlinks of a tar being imported, grouped by the file they share, so that one rule
 * picks the entry that holds the content wherever a layer comes from: the first path in
 * byte order, as directory import picks it. A tar lists a file before its links in any
 * order its writer walked (GNU tar: directory order), so without this the same tree gave
 * different layer ids as a directory and as a tar.
 */
export class HardlinkGroups {
  private readonly groupOf = new Map<LeafEntry, Member[]>();

  /** Records that `link` (just set at `linkParts`) is a hardlink to `target` (at `targetParts`). */
  add(target: LeafEntry, targetParts: string[], link: LeafEntry, linkParts: string[]): void {
    let group = this.groupOf.get(target);
    if (!group) {
      group = [{parts: targetParts, entry: target}];
      this.groupOf.set(target, group);
    }
    group.push({parts: linkParts, entry: link});
    this.groupOf.set(link, group);
  }

  /**
   * Rewrites each group in the builder: its first path in byte order becomes the file,
   * the others hardlinks to it, each keeping its own metadata. Members a later tar member
   * replaced are left out (a link keeps the bytes it was made with).
   */
  apply(builder: LayerBuilder): void {
    for (const group of new Set(this.groupOf.values())) {
      const live = group.filter(m => builder.get(m.parts) === m.entry);
      if (live.length === 0) continue;
      live.sort((a, b) => Buffer.compare(Buffer.from(a.parts.join('/')), Buffer.from(b.parts.join('/'))));
      const [primary, ...links] = live as [Member, ...Member[]];
      const target = `/${primary.parts.join('/')}`;
      if (primary.entry.kind === 'file' && links.every(l => l.entry.kind === 'hardlink' && l.entry.target === target)) continue;
      for (const m of live) {
        const {kind: _kind, target: _target, size, blob, ...meta} = m.entry as Extract<LeafEntry, {kind: 'file' | 'hardlink'}> & {target?: string};
        builder.leaf(m.parts, m === primary ? {...meta, kind: 'file', size, blob} : {...meta, kind: 'hardlink', size, blob, target});
      }
    }
  }
}
