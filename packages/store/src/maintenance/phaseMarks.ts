import * as fs from 'node:fs';

/**
 * Per-phase marks of a maintenance command, for profiling (docs/benchmarks.md): with
 * STRATA_GC_MARKS set, each mark records the wall time since the process began, the
 * process's CPU time and the main thread's (Linux: its schedstat; libuv's threads unlink and
 * read meanwhile), and `report` prints them to stderr as one line each, in ms. Unset, a mark
 * costs one branch.
 */
export interface PhaseMarks {
  mark(name: string): void;
  report(): void;
}

const NONE: PhaseMarks = {mark() {}, report() {}};

export function phaseMarks(): PhaseMarks {
  if (!process.env.STRATA_GC_MARKS) return NONE;
  const marks: [string, number, number, number][] = [];
  const schedstat = `/proc/self/task/${process.pid}/schedstat`;
  const mainThread = () => {
    try {
      return Number(fs.readFileSync(schedstat, 'utf8').split(' ')[0]) / 1e6;
    } catch {
      return NaN;
    }
  };
  return {
    mark(name) {
      const cpu = process.cpuUsage();
      marks.push([name, performance.now(), (cpu.user + cpu.system) / 1000, mainThread()]);
    },
    report() {
      for (const [name, wall, cpu, main] of marks) process.stderr.write(`gc-mark ${name} ${wall.toFixed(1)} ${cpu.toFixed(1)} ${main.toFixed(1)}\n`);
    },
  };
}
