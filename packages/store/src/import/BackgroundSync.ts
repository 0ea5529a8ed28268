import {type ChildProcessByStdio, spawn} from 'node:child_process';
import * as path from 'node:path';
import type {Readable, Writable} from 'node:stream';

/**
 * `sync -f` (syncfs) of a store's filesystem, as often as asked, without forking this process
 * each time: one small shell is started once (`start`) and runs `sync -f` for each line it
 * reads. A fork of this process write-protects all its memory, and every page it (or a
 * hashing thread) writes afterwards takes a fault: ~60 ms of CPU per fork of a 200 MB process
 * here, which a sync per 32 MiB of a rootfs import paid four times. Start it early, while the
 * process is small. Node has no binding for syncfs.
 */
export class BackgroundSync {
  private child: ChildProcessByStdio<Writable, Readable, null> | undefined;
  private broken = false;
  private readonly waiting: ((ok: boolean) => void)[] = [];
  private unread = '';

  constructor(private readonly storeDir: string) {}

  /** Starts the shell, if not yet. */
  start(): void {
    if (this.child || this.broken) return;
    let child: ChildProcessByStdio<Writable, Readable, null>;
    try {
      child = spawn('sh', ['-c', 'while read -r _; do if sync -f "$1"; then echo 0; else echo 1; fi; done', 'sh', path.join(this.storeDir, 'tmp')], {stdio: ['pipe', 'pipe', 'ignore']});
    } catch {
      this.broken = true;
      return;
    }
    this.child = child;
    const end = () => {
      this.broken = true;
      for (const answer of this.waiting.splice(0)) answer(false);
    };
    child.on('error', end);
    child.on('exit', end);
    child.stdin.on('error', end); // EPIPE: the shell is gone
    child.stdout.setEncoding('latin1');
    child.stdout.on('data', (text: string) => {
      this.unread += text;
      let nl;
      while ((nl = this.unread.indexOf('\n')) >= 0) {
        const line = this.unread.slice(0, nl);
        this.unread = this.unread.slice(nl + 1);
        this.waiting.shift()?.(line === '0');
      }
    });
  }

  /**
   * True once every byte written to the filesystem before this call is durable; false when
   * the shell or `sync -f` is missing or failed (the caller then fsyncs each file). Never rejects.
   */
  sync(): Promise<boolean> {
    this.start();
    const child = this.child;
    if (this.broken || !child) return Promise.resolve(false);
    return new Promise(resolve => {
      this.waiting.push(resolve);
      child.stdin.write('\n');
    });
  }

  /** Ends the shell (it ends by itself, too, when this process does: its input closes). */
  close(): void {
    this.child?.stdin.end();
    this.child = undefined;
    this.broken = true;
  }
}
