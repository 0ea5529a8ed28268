import {PassThrough} from 'node:stream';
import test from 'ava';
import {imageProgressBar, importProgressBar} from '../src/progress.js';

/** A stream that says it is a terminal, collecting what is written to it. */
function terminal(isTTY: boolean): PassThrough & {text: () => string} {
  const s = Object.assign(new PassThrough(), {isTTY, columns: 100});
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  return Object.assign(s, {text: () => Buffer.concat(chunks).toString('utf8')});
}

test('on a terminal, a long import draws files and bytes, and clears the bar at the end', async t => {
  const err = terminal(true);
  const bar = await importProgressBar(err, terminal(true), 0);
  bar.onProgress({files: 3, bytes: 2048, totalFiles: 4});
  bar.stop();
  t.regex(err.text(), /importing .* 75% \| 3\/4 files \| 2\.0 KiB/);
});

test('a tar, whose total is unknown, shows counts only', async t => {
  const err = terminal(true);
  const bar = await importProgressBar(err, terminal(true), 0);
  bar.onProgress({files: 1234, bytes: 5});
  bar.stop();
  t.regex(err.text(), /importing 1,234 files \| 5 B/);
});

test('nothing is drawn when stderr or stdout is not a terminal', async t => {
  for (const [e, o] of [[false, true], [true, false]] as const) {
    const err = terminal(e);
    const bar = await importProgressBar(err, terminal(o), 0);
    bar.onProgress({files: 1, bytes: 1, totalFiles: 1});
    bar.stop();
    t.is(err.text(), '');
  }
});

test('nothing is drawn for an import shorter than the delay', async t => {
  const err = terminal(true);
  const bar = await importProgressBar(err, terminal(true), 60_000);
  bar.onProgress({files: 1, bytes: 1, totalFiles: 1});
  bar.stop();
  t.is(err.text(), '');
});

test('an image import bar shows image i/n, layer j/m and bytes over the total', async t => {
  const err = terminal(true);
  const bar = await imageProgressBar('importing', err, terminal(true), 0);
  bar.onProgress({image: 2, images: 3, layer: 1, layers: 4, bytes: 3072, totalBytes: 4096});
  bar.stop();
  t.regex(err.text(), /importing .* 75% \| image 2\/3 layer 1\/4 \| 3\.0 KiB\/4\.0 KiB/);
});

test('an export bar, whose total is unknown, shows the layer and the bytes written', async t => {
  const err = terminal(true);
  const bar = await imageProgressBar('exporting', err, terminal(true), 0);
  bar.onProgress({image: 1, images: 1, layer: 2, layers: 3, bytes: 2048});
  bar.stop();
  t.regex(err.text(), /exporting image 1\/1 layer 2\/3 \| 2\.0 KiB/);
});
