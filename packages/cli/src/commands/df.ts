import {Command, Option} from 'clipanion';
import type {DiskUsage} from '@strata/store';
import {BaseCommand} from './BaseCommand.js';
import {formatBytes} from './gc.js';

export class DfCommand extends BaseCommand {
  static override paths = [['df']];
  static override usage = Command.Usage({
    category: 'Store',
    description: 'show how much space images and containers take, and what sharing saves',
    details: `
      Logical bytes are what the images would take if nothing were shared; stored bytes are the blobs the store holds, each once; the ratio is logical over the bytes images reference. Figures count file content, from the index; only containers' writable layers are walked.

      With -v, per image and per container: shared (also reached by another image), unique, and reclaimable (what removing it and running gc would free).
    `,
    examples: [
      ['Show totals', '$0 df'],
      ['Show every image and container', '$0 df -v'],
    ],
  });

  verbose = Option.Boolean('-v,--verbose', false, {description: 'list every image and container'});
  json = Option.Boolean('--json', false, {description: 'print the whole report (totals, images, containers) as JSON'});

  async run(): Promise<number> {
    const {diskUsage} = await import('@strata/store');
    const store = await this.openStore({readOnly: true});
    this.print(this.json, await diskUsage(store), u => this.human(u));
    return 0;
  }

  private human(u: DiskUsage): string {
    const b = formatBytes;
    let out = `logical ${b(u.logical)}, stored ${b(u.stored)} (${u.blobs} blobs), images reference ${b(u.referenced)}, dedup ratio ${u.ratio.toFixed(2)}\n`;
    out += `garbage ${b(u.garbage)} (strata gc frees it), trees ${b(u.metadata)} (${u.trees})\n`;
    const d = u.derived;
    if (d.metaImage.count + d.pack.count + d.smallFile.count > 0) {
      out += `derived (rebuilt on use): metadata images ${b(d.metaImage.bytes)} (${d.metaImage.count}), small-blob packs ${b(d.pack.bytes)} (${d.pack.count})`;
      if (d.smallFile.count > 0) out += `, spilled small files of earlier builds ${b(d.smallFile.bytes)} (${d.smallFile.count})`;
      out += '\n';
    }
    if (!this.verbose) return out;
    out += '\nIMAGE         TAGS                 LOGICAL      SIZE         SHARED       UNIQUE       RECLAIMABLE\n';
    for (const i of u.images)
      out += `${i.id.slice(3, 15)}  ${(i.tags.join(',') || '-').padEnd(20)} ${b(i.logical).padEnd(12)} ${b(i.size).padEnd(12)} ${b(i.shared).padEnd(12)} ${b(i.unique).padEnd(12)} ${b(i.reclaimable)}\n`;
    out += '\nCONTAINER     NAME                 IMAGE         SHARED       UNIQUE       RECLAIMABLE\n';
    for (const c of u.containers)
      out += `${c.id.slice(0, 12).padEnd(12)}  ${(c.name ?? '-').padEnd(20)} ${c.image.slice(3, 15)}  ${b(c.shared).padEnd(12)} ${b(c.unique).padEnd(12)} ${b(c.reclaimable)}\n`;
    return out;
  }
}
