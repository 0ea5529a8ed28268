import type {Writable} from 'node:stream';
import type {ImageProgress, ImportProgress, PullProgress, PushProgress} from '@strata/store';
import type {SingleBar} from 'cli-progress';
import {formatBytes, formatCount} from './render.js';

/**
 * Work shorter than this shows no bar: a bar that flashes for 50 ms is noise.
 * STRATA_PROGRESS_AFTER_MS changes it (the terminal tests draw bars at once with 0).
 */
const SHOW_AFTER_MS = /^\d+$/.test(process.env.STRATA_PROGRESS_AFTER_MS ?? '') ? Number(process.env.STRATA_PROGRESS_AFTER_MS) : 400;

export interface ProgressBar<P> {
  readonly onProgress: (p: P) => void;
  /** Removes the bar (if one was drawn); call before printing the result. */
  stop(): void;
}

export type ImportProgressBar = ProgressBar<ImportProgress>;
export type ImageProgressBar = ProgressBar<ImageProgress>;

/**
 * A progress bar drawn on `stream` (stderr) only when both it and `stdout` are terminals
 * (so `strata import --json | jq` stays quiet) and the work has run for `showAfterMs`;
 * otherwise every call does nothing. `start` draws the bar on the first report shown,
 * `update` moves it on every report.
 */
async function progressBar<P>(stream: Writable, stdout: Writable, showAfterMs: number, format: (p: P) => string,
  start: (bar: SingleBar, p: P) => void, update: (bar: SingleBar, p: P) => void): Promise<ProgressBar<P>> {
  const isTTY = (s: Writable) => (s as {isTTY?: boolean}).isTTY === true;
  if (!isTTY(stream) || !isTTY(stdout)) return {onProgress: () => {}, stop: () => {}};
  const {SingleBar} = (await import('cli-progress')).default; // loaded only for a terminal
  const started = Date.now();
  let bar: SingleBar | undefined;
  return {
    onProgress(p) {
      if (!bar) {
        if (Date.now() - started < showAfterMs) return;
        bar = new SingleBar({
          stream,
          format: format(p),
          // Leave the cursor and line wrap alone: a Ctrl-C must not leave the terminal changed.
          hideCursor: null,
          linewrap: true, // trimmed to the terminal's width
          clearOnComplete: true,
          barsize: 30,
        });
        start(bar, p);
      }
      update(bar, p);
    },
    stop() {
      bar?.stop();
    },
  };
}

/**
 * A bar for an import, by file: `verb` names the work (checkout and cp reuse it). Files and
 * bytes come from the store's `onProgress`; a tar has no known total, so it shows counts only.
 */
export function importProgressBar(stream: Writable, stdout: Writable, showAfterMs = SHOW_AFTER_MS, verb = 'importing'): Promise<ImportProgressBar> {
  const payload = (p: ImportProgress) => ({size: formatBytes(p.bytes), count: formatCount(p.files)});
  return progressBar<ImportProgress>(stream, stdout, showAfterMs,
    p => p.totalFiles !== undefined ? `${verb} {bar} {percentage}% | {count}/{totalCount} files | {size}` : `${verb} {count} files | {size}`,
    (bar, p) => bar.start(p.totalFiles ?? 0, p.files, {...payload(p), totalCount: formatCount(p.totalFiles ?? 0)}),
    (bar, p) => bar.update(p.files, payload(p)));
}

/**
 * A bar for an image import: image i/n and layer j/m as they pass, the bar over the bytes
 * of every distinct layer blob of the source (known before the first is read).
 */
export function imageProgressBar(verb: string, stream: Writable, stdout: Writable, showAfterMs = SHOW_AFTER_MS): Promise<ImageProgressBar> {
  const payload = (p: ImageProgress) => ({image: `${p.image}/${p.images}`, layer: `${p.layer}/${p.layers}`, size: formatBytes(p.bytes), totalSize: formatBytes(p.totalBytes ?? 0)});
  return progressBar<ImageProgress>(stream, stdout, showAfterMs,
    p => p.totalBytes !== undefined
      ? `${verb} {bar} {percentage}% | image {image} layer {layer} | {size}/{totalSize}`
      : `${verb} image {image} layer {layer} | {size}`,
    (bar, p) => bar.start(p.totalBytes ?? 0, p.bytes, payload(p)),
    (bar, p) => bar.update(p.bytes, payload(p)));
}

/** A bar for a pull, in bytes of the layers being fetched. */
export function pullProgressBar(stream: Writable, stdout: Writable, showAfterMs = SHOW_AFTER_MS): Promise<ProgressBar<PullProgress>> {
  const payload = (p: PullProgress) => ({size: formatBytes(p.bytes), totalSize: formatBytes(p.total), fetching: p.fetching, layers: p.layers});
  return progressBar<PullProgress>(stream, stdout, showAfterMs,
    () => 'pulling {bar} {percentage}% | {size}/{totalSize} | {fetching} of {layers} layers to fetch',
    (bar, p) => bar.start(p.total, p.bytes, payload(p)),
    (bar, p) => bar.update(p.bytes, payload(p)));
}

/** A bar for a push, by layer, with the bytes uploaded. */
export function pushProgressBar(stream: Writable, stdout: Writable, showAfterMs = SHOW_AFTER_MS): Promise<ProgressBar<PushProgress>> {
  return progressBar<PushProgress>(stream, stdout, showAfterMs,
    () => 'pushing {bar} layer {value}/{total} | {size} uploaded',
    (bar, p) => bar.start(p.layers, p.done, {size: formatBytes(p.bytes)}),
    (bar, p) => bar.update(p.done, {size: formatBytes(p.bytes)}));
}
