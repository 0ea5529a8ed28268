import type {Writable} from 'node:stream';
import type {ImportProgress} from '@strata/store';
import {formatBytes, formatCount} from './render.js';

/** Imports shorter than this show no bar: a bar that flashes for 50 ms is noise. */
const SHOW_AFTER_MS = 400;

export interface ImportProgressBar {
  readonly onProgress: (p: ImportProgress) => void;
  /** Removes the bar (if one was drawn); call before printing the result. */
  stop(): void;
}

/**
 * A progress bar for an import, drawn on `stream` (stderr) only when both it and `stdout`
 * are terminals (so `strata import --json | jq` stays quiet) and the import has run for a
 * moment; otherwise every call does nothing. Files and bytes come
 * from the store's `onProgress`; a tar has no known total, so it shows counts only.
 */
export async function importProgressBar(stream: Writable, stdout: Writable, showAfterMs = SHOW_AFTER_MS): Promise<ImportProgressBar> {
  const isTTY = (s: Writable) => (s as {isTTY?: boolean}).isTTY === true;
  if (!isTTY(stream) || !isTTY(stdout)) return {onProgress: () => {}, stop: () => {}};
  const {SingleBar} = (await import('cli-progress')).default; // loaded only for a terminal
  const started = Date.now();
  let bar: InstanceType<typeof SingleBar> | undefined;
  return {
    onProgress(p) {
      const payload = {size: formatBytes(p.bytes), count: formatCount(p.files)};
      if (!bar) {
        if (Date.now() - started < showAfterMs) return;
        const known = p.totalFiles !== undefined;
        bar = new SingleBar({
          stream,
          format: known ? 'importing {bar} {percentage}% | {count}/{totalCount} files | {size}' : 'importing {count} files | {size}',
          // Leave the cursor and line wrap alone: a Ctrl-C must not leave the terminal changed.
          hideCursor: null,
          linewrap: true, // trimmed to the terminal's width
          clearOnComplete: true,
          barsize: 30,
        });
        bar.start(p.totalFiles ?? 0, p.files, {...payload, totalCount: formatCount(p.totalFiles ?? 0)});
      }
      bar.update(p.files, payload);
    },
    stop() {
      bar?.stop();
    },
  };
}
