/**
 * Per-phase marks of a maintenance command, for profiling (docs/benchmarks.md): with
 * STRATA_GC_MARKS set, each mark records the wall time since the process began and the
 * process's CPU time, and `report` prints them to stderr as one line each. Unset, a mark
 * costs one branch.
 */
export interface PhaseMarks {
  mark(name: string): void;
  report(): void;
}

const NONE: PhaseMarks = {mark() {}, report() {}};

export function phaseMarks(): PhaseMarks {
  if (!process.env.STRATA_GC_MARKS) return NONE;
  const marks: [string, number, number][] = [];
  return {
    mark(name) {
      const cpu = process.cpuUsage();
      marks.push([name, performance.now(), (cpu.user + cpu.system) / 1000]);
    },
    report() {
      for (const [name, wall, cpu] of marks) process.stderr.write(`gc-mark ${name} ${wall.toFixed(1)} ${cpu.toFixed(1)}\n`);
    },
  };
}
