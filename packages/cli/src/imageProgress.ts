import type {Writable} from 'node:stream';
import type {ImageProgress} from '@strata/store';
import {formatBytes} from './render.js';

/** Work shorter than this shows no bar: a bar that flashes for 50 ms is noise. */
const SHOW_AFTER_MS = 400;

export interface ImageProgressBar {
  readonly onProgress: (p: ImageProgress) => void;
  /** Removes the bar (if one was drawn); call before printing the result. */
  stop(): void;
}

/**
 * A progress bar for an image import or export, by layer: drawn on `stream` (stderr) only
 * when both it and `stdout` are terminals and the work has run for a moment; otherwise
 * every call does nothing.
 */
export async function imageProgressBar(verb: string, stream: Writable, stdout: Writable, showAfterMs = SHOW_AFTER_MS): Promise<ImageProgressBar> {
  const isTTY = (s: Writable) => (s as {isTTY?: boolean}).isTTY === true;
  if (!isTTY(stream) || !isTTY(stdout)) return {onProgress: () => {}, stop: () => {}};
  const {SingleBar} = (await import('cli-progress')).default; // loaded only for a terminal
  const started = Date.now();
  let bar: InstanceType<typeof SingleBar> | undefined;
  return {
    onProgress(p) {
      if (!bar) {
        if (Date.now() - started < showAfterMs) return;
        bar = new SingleBar({stream, format: `${verb} {bar} layer {value}/{total} | {size}`, hideCursor: null, linewrap: true, clearOnComplete: true, barsize: 30});
        bar.start(p.layers, p.layer, {size: formatBytes(p.bytes)});
      }
      bar.update(p.layer, {size: formatBytes(p.bytes)});
    },
    stop() {
      bar?.stop();
    },
  };
}
