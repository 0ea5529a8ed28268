import {once} from 'node:events';
import * as os from 'node:os';
import * as path from 'node:path';
import type {Readable} from 'node:stream';
import {Command, Option, UsageError} from 'clipanion';
import type {Store} from '@strata/store';
import {EXIT} from '../StrataCli.js';

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
    try {
      return (await this.run()) ?? EXIT.ok;
    } catch (err) {
      return this.fail(err);
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

  /** Opens the store (waiting for another strata process to finish); closed when the command ends. */
  async openStore(options: {create?: boolean} = {}): Promise<Store> {
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

  /** Writes `value` as JSON when --json is set, else the human text `human(value)`. */
  print<T>(json: boolean, value: T, human: (v: T) => string): void {
    this.context.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : human(value));
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

  /** One line on stderr, for notes that must not pollute stdout. */
  note(message: string): void {
    this.context.stderr.write(`${message}\n`);
  }

  private fail(err: unknown): number {
    const e = err as {code?: unknown; message?: string; name?: string};
    if (err instanceof UsageError) {
      this.context.stderr.write(`strata: ${e.message}\n`);
      return EXIT.usage;
    }
    // Coded errors of strata (StoreError, UnionError) and of the system (ENOENT…) are the user's to fix.
    if (typeof e.code === 'string' && (e.name === 'StoreError' || e.name === 'UnionError' || /^E[A-Z]+$/.test(e.code))) {
      this.context.stderr.write(`strata: ${e.message}\n`);
      return BUSY.has(e.code) ? EXIT.busy : PROBLEMS.has(e.code) ? EXIT.problems : MALFORMED.has(e.code) ? EXIT.usage : EXIT.failure;
    }
    // LevelDB's own errors (a damaged .ldb file met while reading): the store's problem, not a bug.
    if (typeof e.code === 'string' && /^LEVEL_(CORRUPTION|IO_ERROR)/.test(e.code)) {
      this.context.stderr.write(`strata: the index is damaged (${e.message}); "strata verify --repair" rebuilds it\n`);
      return EXIT.problems;
    }
    throw err; // a bug: keep the stack
  }
}
