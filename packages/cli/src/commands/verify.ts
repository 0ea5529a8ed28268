import {Command, Option} from 'clipanion';
import type {VerifyReport} from '@strata/store';
import {EXIT} from '../exitCodes.js';
import {BaseCommand} from './BaseCommand.js';

export class VerifyCommand extends BaseCommand {
  static override paths = [['verify']];
  static override usage = Command.Usage({
    category: 'Store',
    description: 're-hash every object and check every reference',
    details: `
      Re-hashes blobs (inline and object files), trees and images, and checks every reference: tree to blob and subtree, layer to tree, image to layers, tag to image, container to image and writable layer. Each problem names the object and who references it; the images and containers that reach a problem are listed as damaged. Exits 3 when anything is wrong.

      With --repair, removes exactly what is broken (corrupt objects, and tags, names, pins and cached stacks that name missing objects), never an intact object; importing the damaged content again restores missing blobs. Exits 3 when problems remain after repair.
    `,
    examples: [
      ['Check the store', '$0 verify'],
      ['Remove what is broken', '$0 verify --repair'],
    ],
  });

  repair = Option.Boolean('--repair', false, {description: 'remove broken entries (only those) and name what they damaged'});
  json = Option.Boolean('--json', false, {description: 'print the report as JSON ({checked, problems, damagedImages, damagedContainers, remaining})'});

  async run(): Promise<number> {
    const {verifyStore, describe, repairIndex, missingIndexReport, rebuildIndex} = await import('@strata/store');
    let report: VerifyReport;
    try {
      report = await verifyStore(await this.openStore({readOnly: !this.repair}), {repair: this.repair});
    } catch (err) {
      const code = (err as {code?: string}).code;
      if (code === 'INDEX_MISSING' && !this.repair) {
        report = await missingIndexReport(this.storeDir());
      } else if (code === 'INDEX_MISSING') {
        const r = await rebuildIndex(this.storeDir());
        this.note(`strata: the index was lost; started a new one: ${r.blobs} intact object files indexed again${r.layer ? ` and kept by pinned layer ${r.layer}` : ''}`
          + `${r.containers.map(c => `; container ${c.id}'s writable layer kept as pinned layer ${c.layer}`).join('')}`
          + `${r.unreadable.map(c => `; container ${c.id} could not be read (${c.why})`).join('')}`
          + `${r.damagedFiles > 0 ? `; ${r.damagedFiles} damaged object files left for gc` : ''}. Tags, images and small files lived in the index and are gone: import them again`);
        report = await verifyStore(await this.openStore(), {repair: true});
      } else {
        if (!this.repair || code !== 'INDEX_CORRUPT') throw err;
        await this.closeStore();
        await repairIndex(this.storeDir());
        this.note('strata: rebuilt the damaged index (LevelDB repair; unreadable files moved to index/lost)');
        report = await verifyStore(await this.openStore(), {repair: true});
      }
    }
    this.print(this.json, report, r => human(r, describe));
    return report.remaining > 0 ? EXIT.problems : EXIT.ok;
  }
}

function human(r: VerifyReport, describe: (key: string) => string): string {
  let out = '';
  for (const p of r.problems) {
    const by = p.referencedBy.length > 0 ? ` (referenced by ${p.referencedBy.slice(0, 3).map(describe).join(', ')}${p.referencedBy.length > 3 ? ` and ${p.referencedBy.length - 3} more` : ''})` : '';
    out += `${p.kind}: ${p.message}${by}${p.repaired ? ' [removed]' : ''}\n`;
  }
  for (const i of r.damagedImages) out += `damaged image ${i.id}${i.tags.length > 0 ? ` (${i.tags.join(', ')})` : ''}\n`;
  for (const c of r.damagedContainers) out += `damaged container ${c.id}${c.name ? ` (${c.name})` : ''}\n`;
  out += `checked ${r.checked} entries: ${r.problems.length === 0 ? 'no problems' : `${r.problems.length} problems`}`;
  if (r.repaired && r.problems.length > 0) out += `, ${r.remaining} remain after repair`;
  return `${out}\n`;
}
