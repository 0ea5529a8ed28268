import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {PassThrough} from 'node:stream';
import type {ExecutionContext} from 'ava';
import {buildCli} from '../src/index.js';

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the strata Cli in this process on PassThrough streams (no colours). */
export async function runCli(args: readonly string[]): Promise<RunResult> {
  const stdout = new PassThrough(), stderr = new PassThrough();
  const out: Buffer[] = [], err: Buffer[] = [];
  stdout.on('data', (d: Buffer) => out.push(d));
  stderr.on('data', (d: Buffer) => err.push(d));
  const code = await buildCli({enableColors: false}).run([...args], {stdin: new PassThrough(), stdout, stderr, env: {}, colorDepth: 1});
  return {code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8')};
}

/** A fresh temporary directory, deleted when the test ends. */
export async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-cli-'));
  t.teardown(() => fs.rm(dir, {recursive: true, force: true}));
  return dir;
}

/** The path of a fresh store made by `strata init`. */
export async function tempStore(t: ExecutionContext): Promise<string> {
  const store = path.join(await tempDir(t), 'store');
  const r = await runCli(['init', '--store', store]);
  if (r.code !== 0) throw new Error(`strata init failed: ${r.stderr}`);
  return store;
}
