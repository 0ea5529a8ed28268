import {spawn} from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';
import type {ExecutionContext} from 'ava';

/** The real CLI binary, as the root package's dependency installs it. */
export const STRATA_BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'node_modules', '.bin', 'strata');

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the strata binary to completion (or kills it after `timeoutMs`: code -1); never
 * throws on a non-zero exit. With `user`, it runs as that uid (and gid, with no other
 * groups) through setpriv(1), util-linux.
 */
export function strata(args: readonly string[], options: {store?: string; input?: string | Buffer; env?: Record<string, string>; cwd?: string; timeoutMs?: number; user?: number} = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env = {...process.env, NO_COLOR: '1', ...(options.store ? {STRATA_STORE: options.store} : {}), ...options.env};
    const [cmd, argv] = options.user === undefined ? [STRATA_BIN, [...args]]
      : ['setpriv', [`--reuid=${options.user}`, `--regid=${options.user}`, '--clear-groups', STRATA_BIN, ...args]];
    const child = spawn(cmd, argv, {env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'], ...(options.timeoutMs ? {timeout: options.timeoutMs, killSignal: 'SIGKILL' as const} : {})});
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', d => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', d => { stderr += d; });
    child.on('error', reject);
    child.on('close', code => resolve({code: code ?? -1, stdout, stderr}));
    child.stdin.on('error', ignoreEpipe(reject));
    child.stdin.end(options.input ?? '');
  });
}

/** A fresh temporary directory, deleted when the test ends. */
export async function tempDir(t: ExecutionContext, label = 'strata-e2e-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), label));
  t.teardown(() => fs.rm(dir, {recursive: true, force: true}));
  return dir;
}

/** A fresh initialised store directory. */
export async function tempStore(t: ExecutionContext): Promise<string> {
  const store = path.join(await tempDir(t, 'strata-store-'), 'store');
  const r = await strata(['init', '--store', store]);
  if (r.code !== 0) throw new Error(`strata init failed: ${r.stderr}`);
  return store;
}

/** `s` quoted for sh. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs the strata binary on a pseudo-terminal (util-linux `script`), so that stdout and
 * stderr are both terminals, as for a person at a shell. Returns what the terminal showed
 * (stdout and stderr together) and strata's exit code (`script -e`).
 */
export function strataOnTerminal(args: readonly string[], options: {store?: string; env?: Record<string, string>} = {}): Promise<{code: number; output: string}> {
  const line = [STRATA_BIN, ...args].map(shellQuote).join(' ');
  return new Promise((resolve, reject) => {
    const env = {...process.env, NO_COLOR: '1', ...(options.store ? {STRATA_STORE: options.store} : {}), ...options.env};
    const child = spawn('script', ['-qefc', line, '/dev/null'], {env, stdio: ['pipe', 'pipe', 'pipe']});
    let output = '';
    child.stdout.setEncoding('utf8').on('data', d => { output += d; });
    child.stderr.setEncoding('utf8').on('data', d => { output += d; });
    child.on('error', err => reject(new Error(`script (util-linux) is needed to run strata on a terminal: ${err.message}`)));
    child.on('close', code => resolve({code: code ?? -1, output}));
    child.stdin.on('error', ignoreEpipe(reject));
    child.stdin.end();
  });
}

/**
 * An error handler for a child's stdin that lets EPIPE pass: a command that exits without
 * reading its input (`--help` answers in a few milliseconds) closes the pipe before the
 * test has ended it, and Node reports that as an error on the stream.
 */
export function ignoreEpipe(reject: (err: Error) => void): (err: NodeJS.ErrnoException) => void {
  return err => { if (err.code !== 'EPIPE') reject(err); };
}
