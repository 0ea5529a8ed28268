import {setFlagsFromString} from 'node:v8';

/**
 * The bytecode a function runs before V8 considers compiling it with its optimising compiler
 * (TurboFan), while a directory import's first files are stored: 16 times V8's own. A
 * threaded import runs two isolates (this thread and a fresh hashing thread), and with
 * V8's budget TurboFan compiled some 200 of their functions in an import of the rootfs-sized
 * tree, ~0.7 s of CPU on V8's background threads (perf), on 2 cores beside the two threads
 * that do the work: more than the optimised code saved in a tree of 5,000 files. The
 * functions that run for every file are still optimised, after some thousand calls
 * (docs/design.md, "A later tier-up").
 */
export const IMPORT_INTERRUPT_BUDGET = 16 * 67_584;
/**
 * Files after which V8's own budget is back: past them the optimised code pays for its
 * compiling (an import of 100,000 files with the raised budget throughout took ~13 % more
 * CPU, its main thread ~23 % more).
 */
export const LATE_TIER_UP_FILES = 16_384;

/**
 * V8's own budget, where it is known: the V8 of Node 20 (11.3), on which this was measured.
 * Elsewhere strata leaves V8's tiering alone (later V8s tier up through Maglev, and the
 * value to restore is theirs).
 */
const V8_OWN_BUDGET = process.versions.v8.startsWith('11.3.') ? 67_584 : undefined;

let holds = 0;

/**
 * Raises V8's interrupt budget (IMPORT_INTERRUPT_BUDGET) until the returned function is
 * called, by every caller that raised it (imports may overlap in one process). V8's flags
 * are the process's: a hashing thread cannot have its own. Changes no result, only when
 * code is optimised. Nothing is changed when the process was started with its own
 * `--interrupt-budget`, or on a V8 whose own budget is not known here. `setFlags` and
 * `execArgv` are V8's and the process's own unless a test gives others.
 */
export function tierUpLater(setFlags: (flags: string) => void = setFlagsFromString, execArgv: readonly string[] = process.execArgv): () => void {
  if (V8_OWN_BUDGET === undefined || execArgv.some(a => a.startsWith('--interrupt-budget'))) return () => {};
  if (holds++ === 0) setFlags(`--interrupt-budget=${IMPORT_INTERRUPT_BUDGET}`);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--holds === 0) setFlags(`--interrupt-budget=${V8_OWN_BUDGET}`);
  };
}
