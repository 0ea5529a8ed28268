import {Command, Option} from 'clipanion';
import type {EntryKind, LayerRecord, Store, Tree, TreeEntry} from '@strata/store';
import {formatBytes, formatCount, formatFields, formatMode, formatTable} from '../../render.js';
import {BaseCommand} from '../BaseCommand.js';

/** One top-level entry of a layer, as `strata layer inspect --json` shows it. */
export interface RootEntry {
  readonly name: string;
  readonly kind: EntryKind;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly mtime?: number;
  readonly size?: number;
  readonly target?: string;
  /** A directory that hides what the layers below have there. */
  readonly opaque?: boolean;
}

/** What `strata layer inspect --json` prints: the record, and the entries of the root. */
export type LayerReport = LayerRecord & {readonly opaque: boolean; readonly root: readonly RootEntry[]};

export class LayerInspectCommand extends BaseCommand {
  static override paths = [['layer', 'inspect']];
  static override usage = Command.Usage({
    category: 'Layers',
    description: 'show a layer: its record and top-level entries',
    details: 'LAYER is a full layer id or a unique prefix of one. Shows what importing it found (entries, file bytes, source, time) and the entries of its root directory, whiteouts included.',
    examples: [
      ['Inspect a layer by id prefix', '$0 layer inspect 9f1c2a'],
      ['Inspect a layer as JSON', '$0 layer inspect 9f1c2a --json'],
    ],
  });

  layer = Option.String({name: 'LAYER'});
  json = Option.Boolean('--json', false, {description: 'print the record and {root: [entries]} as JSON'});

  async run(): Promise<number> {
    const store = await this.openStore({readOnly: true});
    const record = await store.resolveLayer(this.layer);
    const tree = await store.getTree(record.id);
    const root: RootEntry[] = [];
    for (const e of tree.entries) root.push(await rootEntry(store, e));
    this.print(this.json, {...record, opaque: tree.opaque, root}, renderLayer);
    return 0;
  }
}

async function rootEntry(store: Store, e: TreeEntry): Promise<RootEntry> {
  switch (e.kind) {
    case 'whiteout': return {name: e.name, kind: e.kind};
    case 'dir': {
      const t: Tree = await store.getTree(e.tree);
      return {name: e.name, kind: e.kind, mode: t.mode, uid: t.uid, gid: t.gid, mtime: t.mtime, ...(t.opaque ? {opaque: true} : {})};
    }
    case 'file': return {name: e.name, kind: e.kind, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, size: e.size};
    case 'hardlink': return {name: e.name, kind: e.kind, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, size: e.size, target: e.target};
    case 'symlink': return {name: e.name, kind: e.kind, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, target: e.target};
    default: return {name: e.name, kind: e.kind, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime};
  }
}

function renderLayer(r: LayerReport): string {
  const fields: [string, string][] = [
    ['layer', r.id],
    ['entries', formatCount(r.entries)],
    ['size', formatBytes(r.bytes)],
    ['created', r.created],
  ];
  if (r.source) fields.push(['source', r.source]);
  if (r.opaque) fields.push(['opaque', 'yes: hides everything below']);
  const rows = r.root.map(e => [
    formatMode(e.kind, e.mode ?? 0),
    e.kind === 'whiteout' ? '' : `${e.uid}:${e.gid}`,
    e.size === undefined ? '' : formatBytes(e.size),
    e.kind === 'whiteout' ? `${e.name} (whiteout)`
      : e.kind === 'symlink' ? `${e.name} -> ${e.target}`
      : e.kind === 'hardlink' ? `${e.name} => ${e.target}`
      : e.kind === 'dir' ? `${e.name}/${e.opaque ? ' (opaque)' : ''}` : e.name,
  ]);
  return `${formatFields(fields)}\n${r.root.length === 0 ? '(empty root)\n' : formatTable([['MODE', 'OWNER', 'SIZE', 'NAME'], ...rows], ['left', 'left', 'right'])}`;
}
