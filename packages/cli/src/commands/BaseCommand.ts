import {once} from 'node:events';
import * as os from 'node:os';
import * as path from 'node:path';
import type {Readable} from 'node:stream';
import {Command, Option, UsageError} from 'clipanion';
import type {Store} from '@strata/store';
import {escapeName, outputBytes} from '../render.js';
import {EXIT} from '../exitCodes.js';
import {isLazyOutput, WHEN_MADE} from '../stdio.js';

/**
 * Exit codes of coded errors (README, "Exit codes"): a malformed argument or setting is a
 * usage error (2) wherever it is found; a well-formed one that names nothing, and every
 * other coded error, is a failure (1); damage in the store is 3; a busy store 75.
 */
const BUSY = new Set(['STORE_LOCKED']);
const PROBLEMS = new Set(['OBJECT_CORRUPT', 'OBJECT_MISSING', 'INDEX_CORRUPT', 'INDEX_MISSING']);
const MALFORMED = new Set(['BAD_REFERENCE', 'BAD_NAME', 'BAD_DIGEST', 'BAD_SETTING']);

/**
 * What every strata command shares: the store location (`--store`, $STRATA_STORE, or
 * the per-user data directory), `--json` rendering, and the mapping of coded errors to
 * one line on stderr and an exit code. Subclasses implement `run()`.
 */
export abstract class BaseCommand extends Command {
  store = Option.String('--store', {description: 'the store directory (default: $STRATA_STORE, else $XDG_DATA_HOME/strata)'});

  private opened: Store | undefined;

  abstract run(): Promise<number | void>;

  async execute(): Promise<number> {
    quietOnClosedPipe(this.context.stdout);
    try {
      return (await this.run()) ?? EXIT.ok;
    } catch (err) {
      return await this.fail(err);
    } finally {
      await this.opened?.close().catch(() => {});
    }
  }

  /** The store directory this command uses. */
  storeDir(): string {
    // An empty --store (an unset shell variable) must not fall back to the default store: gc or rm would act on it.
    if (this.store === '') throw new UsageError('--store needs a directory (it was given an empty string)');
    if (this.store) return path.resolve(this.store);
    if (process.env.STRATA_STORE) return path.resolve(process.env.STRATA_STORE);
    const data = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
    return path.join(data, 'strata');
  }

  /**
   * Opens the store (waiting for another strata process to finish); closed when the command
   * ends. `readOnly` commands also work on a store this user cannot write (a snapshot of its index).
   */
  async openStore(options: {create?: boolean; readOnly?: boolean} = {}): Promise<Store> {
    const dir = this.storeDir();
    const {Store, describeHolder} = await import('@strata/store'); // loaded lazily: `--help` stays fast
    const stderr = this.context.stderr as {isTTY?: boolean} & typeof this.context.stderr;
    this.opened = await Store.open(dir, {
      ...options,
      // On a terminal, a command that waits (over a second) says for whom; in a script it waits quietly.
      ...(stderr.isTTY ? {onWait: ({holder}) => this.note(`strata: waiting for the store ${dir}: ${describeHolder(holder)} is using it`)} : {}),
    });
    return this.opened;
  }

  /** Closes the store early (e.g. to repair it); a later openStore opens it again. */
  async closeStore(): Promise<void> {
    await this.opened?.close();
    this.opened = undefined;
  }

  /**
   * Standard input: the context's when it has one (tests give a stream), else the process's.
   * The bundled CLI's context has none (scripts/bundle.js): Node makes `process.stdin` a
   * stream on first use, 2-10 ms that only the commands reading it should pay.
   */
  get stdin(): Readable {
    return (this.context.stdin as Readable | undefined) ?? process.stdin;
  }

  /** Writes `value` as JSON when --json is set, else the human text `human(value)`. */
  print<T>(json: boolean, value: T, human: (v: T) => string): void {
    this.context.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : outputBytes(human(value)));
  }

  /**
   * Copies `source` to stdout, waiting on back-pressure. Returns false when the reader went
   * away (`strata cat … | head`): the caller stops quietly, as cat(1) does.
   */
  async writeOut(source: Readable): Promise<boolean> {
    const out = this.context.stdout;
    try {
      for await (const chunk of source)
        if (!out.write(chunk)) await once(out, 'drain');
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err;
      source.destroy();
      return false;
    }
  }

  /**
   * A name (of a file, a path) as this command's stdout may show it: escaped as `ls -b`
   * does when stdout is a terminal, exact otherwise (pipes and --json get the bytes).
   */
  shownName(name: string): string {
    return (this.context.stdout as {isTTY?: boolean}).isTTY ? escapeName(name) : name;
  }

  /** One line on stderr, for notes that must not pollute stdout. */
  note(message: string): void {
    this.context.stderr.write(`${message}\n`);
  }

  /**
   * Classifies an error by its type: a UsageError (exit 2); a StrataError (StoreError,
   * UnionError) or a RegistryError, shown as its one line with the code's exit status; an fs error about a path
   * the user named (outside the store), one line; LevelDB's damage, one line. Everything
   * else, an fs error inside the store included, is strata's bug: rethrown with its stack.
   */
  private async fail(err: unknown): Promise<number> {
    const e = err as {code?: unknown; message?: string; syscall?: unknown; path?: unknown; dest?: unknown};
    if (err instanceof UsageError) {
      this.context.stderr.write(`strata: ${e.message}\n`);
      return EXIT.usage;
    }
    const {StrataError} = await import('@strata/store');
    if (err instanceof StrataError) {
      this.context.stderr.write(`strata: ${err.message}\n`);
      return BUSY.has(err.code) ? EXIT.busy : PROBLEMS.has(err.code) ? EXIT.problems : MALFORMED.has(err.code) ? EXIT.usage : EXIT.failure;
    }
    // A registry's answers (refused credentials, unreachable, a missing manifest) are coded the same way.
    const {RegistryError} = await import('@strata/registry');
    if (err instanceof RegistryError) {
      this.context.stderr.write(`strata: ${err.message}\n`);
      return MALFORMED.has(err.code) ? EXIT.usage : EXIT.failure;
    }
    if (isUserPathError(e, this.storeDir())) {
      this.context.stderr.write(`strata: ${e.message}\n`);
      return EXIT.failure;
    }
    // LevelDB's own errors (a damaged .ldb file met while reading): the store's problem, not a bug.
    if (typeof e.code === 'string' && /^LEVEL_(CORRUPTION|IO_ERROR)/.test(e.code)) {
      this.context.stderr.write(`strata: the index is damaged (${e.message}); "strata verify --repair" rebuilds it\n`);
      return EXIT.problems;
    }
    // A bug: its stack, on stderr (clipanion would print it on stdout, where a script reads
    // --json), and exit 1, as for any failure.
    const stack = err instanceof Error ? err.stack ?? `${err.name}: ${err.message}` : String(err);
    this.context.stderr.write(`strata: internal error (a bug in strata; please report it with what follows):\n${stack}\n`);
    return EXIT.failure;
  }
}

/**
 * A reader that went away (`strata images | head -1`) is not an error: what is left of the
 * report has nobody to read it, and the command's work and exit code stand, as for cat(1)
 * and `writeOut`. Without a listener, Node reports the stream's EPIPE as an uncaught error
 * with a stack trace.
 */
function quietOnClosedPipe(out: NodeJS.WritableStream): void {
  // The process's own stdout before Node made it (stdio.ts): its writes drop EPIPE themselves; the stream, once made, gets the listener.
  if (isLazyOutput(out)) return out[WHEN_MADE](quietOnClosedPipe);
  const stream = out as NodeJS.WritableStream & {listenerCount?: (e: string) => number; [QUIET]?: true};
  if (stream[QUIET] || typeof stream.on !== 'function') return;
  stream[QUIET] = true;
  stream.on('error', (err: NodeJS.ErrnoException) => {
    // Any other error is for whoever else listens (a pipeline that copies into stdout
    // reports its source's damage so); with nobody else, it stays an error.
    if (err.code !== 'EPIPE' && (stream.listenerCount?.('error') ?? 1) <= 1) throw err;
  });
}
const QUIET = Symbol('strata.quietOnClosedPipe');

/** A full disk is the user's to fix wherever strata met it, inside the store or out. */
const DISK_FULL = new Set(['ENOSPC', 'EDQUOT']);

/**
 * An error of the system (Node's fs: an errno code, a syscall) that the user can fix: a
 * full disk, or one that names a path outside the store (a checkout target, a host file to
 * copy, a source to import; of a copy, either end). An errno about the store's own files
 * alone is strata's trouble.
 */
function isUserPathError(e: {code?: unknown; syscall?: unknown; path?: unknown; dest?: unknown}, storeDir: string): boolean {
  if (typeof e.code !== 'string' || !/^E[A-Z]+$/.test(e.code) || typeof e.syscall !== 'string') return false;
  if (DISK_FULL.has(e.code)) return true;
  const paths = [e.path, e.dest].filter((p): p is string => typeof p === 'string');
  if (paths.length === 0) return true; // a pipe or stream of the user's (EPIPE on stdout…)
  return paths.some(p => {
    const rel = path.relative(storeDir, path.resolve(p));
    return rel.startsWith('..') || path.isAbsolute(rel);
  });
}
