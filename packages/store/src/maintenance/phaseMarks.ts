import * as fs from 'node:fs';

/**
 * Per-phase marks of a maintenance command, for profiling (docs/benchmarks.md): with
 * STRATA_GC_MARKS set, each mark records the wall time since the process began, the
 * process's CPU time and the main thread's (Linux: its schedstat; libuv's threads unlink and
 * read meanwhile) with the time it spent runnable but waiting for a core (the schedstat's
 * second field: on a busy machine, or behind the process's own threads), and `report` prints
 * them to stderr as one line each, in ms. Unset, a mark costs one branch.
 */
export interface PhaseMarks {
  mark(name: string): void;
  report(): void;
}

const NONE: PhaseMarks = {mark() {}, report() {}};

export function phaseMarks(): PhaseMarks {
  if (!process.env.STRATA_GC_MARKS) return NONE;
  const marks: [string, number, number, number, number][] = [];
  const schedstat = `/proc/self/task/${process.pid}/schedstat`;
  const mainThread = (): [number, number] => {
    try {
      const [run, wait] = fs.readFileSync(schedstat, 'utf8').split(' ');
      return [Number(run) / 1e6, Number(wait) / 1e6];
    } catch {
      return [NaN, NaN];
    }
  };
  const line = ([name, wall, cpu, main, queued]: [string, number, number, number, number]) =>
    `gc-mark ${name} ${wall.toFixed(1)} ${cpu.toFixed(1)} ${main.toFixed(1)} ${queued.toFixed(1)}\n`;
  return {
    mark(name) {
      const cpu = process.cpuUsage();
      marks.push([name, performance.now(), (cpu.user + cpu.system) / 1000, ...mainThread()]);
    },
    report() {
      // The store's close and the process's own end come after gc's: one more line at exit.
      process.once('exit', () => { this.mark('process exit'); const m = marks.at(-1)!; process.stderr.write(line(m)); });
      for (const m of marks) process.stderr.write(line(m));
    },
  };
}
