import {Command, Option} from 'clipanion';
import type {GcReport} from '@strata/store';
import {BaseCommand} from './BaseCommand.js';

const LABELS: [keyof GcReport['byKind'], string][] = [
  ['image', 'images'], ['layer', 'layers'], ['tree', 'trees'], ['blob', 'blobs'], ['flat', 'flattened stacks'], ['registry', 'registry records'],
  ['lease', 'expired leases'], ['orphanFile', 'orphan object files'], ['tmpFile', 'temporary files'], ['containerDir', 'container directories'], ['metaImage', 'metadata images'], ['pack', 'small-blob packs'],
  ['smallFile', 'spilled small files of earlier builds'],
];

export class GcCommand extends BaseCommand {
  static override paths = [['gc']];
  static override usage = Command.Usage({
    category: 'Store',
    description: 'remove what no tag, container, pin or lease reaches',
    details: `
      Marks everything reachable from the roots (tags, containers, pins, leases of running work) through images, layers, trees and blobs, then removes the rest from the index in one atomic step, then their object files, object files no index entry names, temporary files of processes that ended, and directories of removed containers.

      A second run right after removes nothing. A kill at any moment leaves a consistent store.
    `,
    examples: [
      ['Remove garbage', '$0 gc'],
      ['Show what would be removed', '$0 gc --dry-run'],
    ],
  });

  dryRun = Option.Boolean('--dry-run', false, {description: 'report what would be removed, remove nothing'});
  json = Option.Boolean('--json', false, {description: 'print the report as JSON ({dryRun, objects, bytes, byKind…})'});

  async run(): Promise<number> {
    const {collectGarbage} = await import('@strata/store');
    const store = await this.openStore();
    const report = await collectGarbage(store, {dryRun: this.dryRun});
    this.print(this.json, report, r => {
      const verb = r.dryRun ? 'would remove' : 'removed';
      const lines = LABELS.filter(([k]) => r.byKind[k].count > 0).map(([k, label]) => `  ${label}: ${r.byKind[k].count} (${formatBytes(r.byKind[k].bytes)})\n`);
      return `${verb} ${r.objects} objects, ${formatBytes(r.bytes)}\n${lines.join('')}`;
    });
    return 0;
  }
}

/** 1536 -> "1.5 KiB": binary units, as du -h. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}
