import * as fs from 'node:fs';
import type {BaseContext} from 'clipanion';

/**
 * The process's stdout and stderr for a command's context, each made by Node only when a
 * command needs the stream itself (to pipe into it, to wait for 'drain', to ask a terminal
 * its colours). Node builds `process.stdout` on first use, and the first stream loads
 * Node's stream modules: ~2-4 ms of every command, `--help` included (docs/benchmarks.md,
 * "Fixed cost of a command"), though most commands only write a report or a line.
 *
 * Until then a stand-in answers:
 * - `write(text)`: the bytes go to the file descriptor at once (`fs.writeSync`), as Node's
 *   own stdout does for files, pipes and terminals on Linux (synchronously), so the order
 *   with later writes through the stream holds. A descriptor that is non-blocking and full
 *   (EAGAIN) hands the rest to the stream, which waits. A reader that went away (EPIPE) or
 *   a closed descriptor (EBADF) drops what is written, as Node's stream then does for
 *   strata (`quietOnClosedPipe`) or for a closed descriptor (a stream that discards).
 * - `isTTY`: false without the stream when the descriptor is no character device, or is
 *   /dev/null (a terminal is a character device); else the stream answers.
 * - `whenMade(f)` (the symbol WHEN_MADE): calls f with the stream once it exists.
 * Anything else makes the stream and is the stream's.
 */
// From the registry: the bundle's entry makes the stand-ins and its second file's commands
// ask them (scripts/bundle.js), each file with a copy of this module.
export const WHEN_MADE: unique symbol = Symbol.for('strata.stdio.whenMade');

export type LazyOutput = NodeJS.WriteStream & {[WHEN_MADE]: (f: (stream: NodeJS.WriteStream) => void) => void};

export function lazyOutput(fd: number, make: () => NodeJS.WriteStream): LazyOutput {
  let real: NodeJS.WriteStream | undefined;
  let gone = false;
  let tty: boolean | undefined;
  const waiting: ((stream: NodeJS.WriteStream) => void)[] = [];
  const stream = (): NodeJS.WriteStream => {
    if (real === undefined) {
      real = make();
      for (const f of waiting.splice(0)) f(real);
    }
    return real;
  };
  function write(this: unknown, chunk: unknown, ...rest: unknown[]): boolean {
    if (real !== undefined || rest.length > 0 || !(typeof chunk === 'string' || chunk instanceof Uint8Array))
      return (stream().write as (...args: unknown[]) => boolean)(chunk, ...rest);
    if (gone) return true;
    let bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    while (bytes.length > 0) {
      try {
        bytes = bytes.subarray(fs.writeSync(fd, bytes));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') return stream().write(bytes);
        if (code !== 'EPIPE' && code !== 'EBADF') throw err;
        gone = true;
        return true;
      }
    }
    return true;
  }
  const whenMade = (f: (stream: NodeJS.WriteStream) => void): void => {
    if (real !== undefined) f(real);
    else waiting.push(f);
  };
  return new Proxy({} as LazyOutput, {
    get(_, key) {
      if (key === WHEN_MADE) return whenMade;
      if (real === undefined) {
        if (key === 'write') return write;
        if (key === 'isTTY' && (tty ??= maybeTerminal(fd)) === false) return false;
      }
      const s = stream();
      const value: unknown = Reflect.get(s, key, s);
      return typeof value === 'function' ? value.bind(s) : value;
    },
    set: (_, key, value) => Reflect.set(stream(), key, value),
    has: (_, key) => key === WHEN_MADE || Reflect.has(stream(), key),
    getPrototypeOf: () => Reflect.getPrototypeOf(stream()),
  });
}

/**
 * False when `fd` cannot be a terminal (no character device, or /dev/null); undefined when
 * only the stream can tell. BigInt stats: Node 20's realpathSync reads the file type of the
 * last number-stat of the process (one shared array) for path components it knows, so an
 * fstat of a pipe made the next `require` of a package through a symlink (pnpm's layout)
 * skip resolving it, and fail to find the package's own dependencies.
 */
function maybeTerminal(fd: number): false | undefined {
  try {
    const st = fs.fstatSync(fd, {bigint: true});
    if (!st.isCharacterDevice() || st.rdev === fs.statSync('/dev/null', {bigint: true}).rdev) return false;
  } catch {
    return false; // no such descriptor: Node's stream for it is no terminal either
  }
  return undefined;
}

/** Whether `stream` is a stand-in of lazyOutput whose stream does not exist yet or does. */
export function isLazyOutput(stream: unknown): stream is LazyOutput {
  return typeof stream === 'object' && stream !== null && WHEN_MADE in stream;
}

/**
 * The context of the strata process: stdout and stderr as stand-ins (above), no stdin
 * (commands that read it take `process.stdin`: Node makes that stream on first use too),
 * and the colour depth of stdout when it is a terminal (asked when first read).
 */
export function processContext(): BaseContext & {stdout: LazyOutput; stderr: LazyOutput} {
  const stdout = lazyOutput(1, () => process.stdout);
  const stderr = lazyOutput(2, () => process.stderr);
  let colorDepth: number | undefined;
  return {
    env: process.env,
    stdout,
    stderr,
    get colorDepth() {
      return colorDepth ??= stdout.isTTY ? stdout.getColorDepth() : 1;
    },
  } as unknown as BaseContext & {stdout: LazyOutput; stderr: LazyOutput};
}
