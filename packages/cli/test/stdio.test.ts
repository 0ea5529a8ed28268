import {spawnSync} from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import {createRequire} from 'node:module';
import * as path from 'node:path';
import {Writable} from 'node:stream';
import test from 'ava';
import {isLazyOutput, lazyOutput, WHEN_MADE} from '../src/stdio.js';
import {tempDir} from './_run.js';

// The process's stdout and stderr before Node makes their streams (src/stdio.ts): whole
// texts go to the descriptor, and the stream is made only when something else is asked.

/** A Writable that keeps what it is given; `made` counts how often the stand-in asked for it. */
function sink(): {stream: NodeJS.WriteStream; chunks: Buffer[]; made: () => NodeJS.WriteStream; count: () => number} {
  const chunks: Buffer[] = [];
  const stream = new Writable({write(chunk: Buffer, _enc, cb) { chunks.push(Buffer.from(chunk)); cb(); }}) as unknown as NodeJS.WriteStream;
  let n = 0;
  return {stream, chunks, made: () => { n++; return stream; }, count: () => n};
}

test('writes go to the descriptor in order, without the stream; isTTY of a file is false without it', async t => {
  const file = path.join(await tempDir(t), 'out');
  const fd = fs.openSync(file, 'w');
  t.teardown(() => fs.closeSync(fd));
  const s = sink();
  const out = lazyOutput(fd, s.made);
  t.true(isLazyOutput(out));
  t.false(isLazyOutput(s.stream));
  t.true(out.write('one\n'));
  t.true(out.write(Buffer.from('two\n')));
  t.false(out.isTTY);
  t.is(s.count(), 0);
  t.is(fs.readFileSync(file, 'utf8'), 'one\ntwo\n');
});

test('anything else makes the stream, once; later writes are the stream\'s, and whenMade sees it', async t => {
  const file = path.join(await tempDir(t), 'out');
  const fd = fs.openSync(file, 'w');
  t.teardown(() => fs.closeSync(fd));
  const s = sink();
  const out = lazyOutput(fd, s.made);
  const seen: unknown[] = [];
  out[WHEN_MADE](stream => seen.push(stream));
  out.write('direct\n');
  t.deepEqual(seen, []);
  t.is(typeof out.on, 'function'); // a listener's place: the stream
  t.is(s.count(), 1);
  t.deepEqual(seen, [s.stream]);
  out.write('streamed\n');
  out.once('close', () => {});
  t.is(s.count(), 1);
  t.is(fs.readFileSync(file, 'utf8'), 'direct\n');
  t.is(Buffer.concat(s.chunks).toString(), 'streamed\n');
  out[WHEN_MADE](stream => seen.push(stream));
  t.deepEqual(seen, [s.stream, s.stream]);
});

test('/dev/null is no terminal; a write with a callback goes through the stream', t => {
  const fd = fs.openSync('/dev/null', 'w');
  t.teardown(() => fs.closeSync(fd));
  const s = sink();
  const out = lazyOutput(fd, s.made);
  t.false(out.isTTY);
  t.is(s.count(), 0);
  out.write('x', () => {});
  t.is(s.count(), 1);
});

test('a reader that went away (EPIPE) drops what is written, quietly', t => {
  const [r, w] = pipe();
  fs.closeSync(r);
  const s = sink();
  const out = lazyOutput(w, s.made);
  t.teardown(() => fs.closeSync(w));
  t.true(out.write('nobody reads this\n'));
  t.true(out.write('nor this\n'));
  t.is(s.count(), 0);
});

test('a full non-blocking pipe (EAGAIN) hands the rest to the stream, in order', t => {
  const [r, w] = pipe();
  t.teardown(() => { fs.closeSync(r); fs.closeSync(w); });
  const s = sink();
  const out = lazyOutput(w, s.made);
  const big = Buffer.alloc(1 << 20, 'a'); // more than a pipe holds (64 KiB on Linux)
  big.write('end', big.length - 3);
  out.write(big);
  t.is(s.count(), 1);
  const inPipe = readAll(r);
  t.true(inPipe.length > 0 && inPipe.length < big.length, `${inPipe.length} bytes went to the pipe`);
  t.true(Buffer.concat([inPipe, ...s.chunks]).equals(big));
});

test('asking a pipe whether it is a terminal leaves how Node resolves modules through symlinks as it was', async t => {
  // Node 20's realpathSync reads the file type of the process's last number-stat for path
  // components it already knows: an fstat of a pipe there made a package reached through a
  // symlink (pnpm's node_modules) load by its link path, so its own dependencies were not found.
  const dir = fs.realpathSync(await tempDir(t));
  for (const p of ['a', 'b']) {
    fs.mkdirSync(path.join(dir, 'real', p), {recursive: true});
    fs.writeFileSync(path.join(dir, 'real', p, 'index.js'), 'module.exports = 1;\n');
  }
  fs.symlinkSync('real', path.join(dir, 'link'));
  const require = createRequire(path.join(dir, 'x.js'));
  t.is(require.resolve('./link/a/index.js'), path.join(dir, 'real', 'a', 'index.js'));
  const [r, w] = pipe();
  t.teardown(() => { fs.closeSync(r); fs.closeSync(w); });
  t.false(lazyOutput(w, sink().made).isTTY);
  t.is(require.resolve('./link/b/index.js'), path.join(dir, 'real', 'b', 'index.js'));
});

/** A pipe whose write end is non-blocking (by a FIFO opened so): [read fd, write fd]. */
function pipe(): [number, number] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-stdio-'));
  const fifo = path.join(dir, 'fifo');
  const r = spawnSync('mkfifo', [fifo]);
  if (r.status !== 0) throw new Error(`mkfifo (coreutils) is needed: ${r.error?.message ?? r.stderr}`);
  const rd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const wr = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  // unlink, not rm: rm's lstat of a FIFO would itself be the number-stat the symlink test is about.
  fs.unlinkSync(fifo);
  fs.rmdirSync(dir);
  return [rd, wr];
}

function readAll(fd: number): Buffer {
  const parts: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(fd, buf);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
      throw err;
    }
    if (n === 0) break;
    parts.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(parts);
}
