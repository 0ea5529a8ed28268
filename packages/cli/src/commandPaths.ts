// What argv names, from the commands' paths alone (`[['image', 'ls'], ['images']]`): no
// command class and no clipanion, so that the bundle's entry (tableMain.ts) can tell help
// and the command that runs before it loads any of them.
import {EXIT} from './exitCodes.js';

/** A command's paths, as clipanion's `static paths`. */
export type Paths = readonly (readonly string[])[];

const FS_OPS = new Set(['ls', 'cat', 'stat', 'write', 'rm', 'mkdir', 'mv', 'ln', 'chmod']);

/**
 * `strata fs CONTAINER OP ...` (the form the README shows) as `strata fs OP CONTAINER ...`
 * (the form clipanion can route: a command's path is a fixed prefix).
 */
export function containerFirst(argv: readonly string[]): string[] {
  const [fs, container, op, ...rest] = argv;
  if (fs === 'fs' && container !== undefined && op !== undefined && !FS_OPS.has(container) && !container.startsWith('-') && FS_OPS.has(op))
    return rest.includes('--help') || rest.includes('-h') ? [fs, op, '--help'] : [fs, op, container, ...rest];
  return [...argv];
}

/** The leading words of argv (before the first option): the command path a user typed. */
function leadingWords(argv: readonly string[]): string[] {
  const words: string[] = [];
  for (const a of argv) {
    if (a.startsWith('-')) break;
    words.push(a);
  }
  return words;
}

/**
 * Whether argv can mean a command of these paths: its leading words start with one of them.
 * Registering only such commands spares clipanion building its parser over every command
 * (docs/benchmarks.md); when none can, every command is registered, for help and "did you mean".
 */
export function canMean(paths: Paths, argv: readonly string[]): boolean {
  const words = leadingWords(argv);
  return paths.some(p => p.length > 0 && p.length <= words.length && p.every((w, i) => w === words[i]));
}

/**
 * The command group argv asks about (`strata image --help`, `strata fs`), among every
 * command's paths: its words, when they are a proper prefix of some paths and no path
 * themselves, and nothing else follows but --help. `[]` for strata itself (no words).
 */
export function groupFor(argv: readonly string[], paths: Paths): string[] | undefined {
  const words = leadingWords(argv);
  const rest = argv.slice(words.length);
  if (rest.some(a => a !== '--help' && a !== '-h')) return undefined;
  if (words.length === 0) return rest.length > 0 || argv.length === 0 ? [] : undefined;
  const isPrefix = paths.some(p => p.length > words.length && words.every((w, i) => w === p[i]));
  const isPath = paths.some(p => p.length === words.length && words.every((w, i) => w === p[i]));
  return isPrefix && !isPath ? words : undefined;
}

/** Every group groupFor can find among these paths (`[]`, `['image']`, …), once each. */
export function groupsOf(paths: Paths): string[][] {
  const groups = new Map<string, string[]>([['', []]]);
  for (const p of paths) {
    for (let n = 1; n < p.length; n++) {
      const words = p.slice(0, n);
      if (groupFor(words, paths) !== undefined) groups.set(words.join(' '), words);
    }
  }
  return [...groups.values()];
}

/**
 * Prints a group's help as strata does: to stdout with exit 0 when asked for (no
 * arguments, --help, -h), else (`strata fs`) to stderr as a usage error.
 */
export function printGroupHelp(argv: readonly string[], text: string, context: {stdout: {write(s: string): unknown}; stderr: {write(s: string): unknown}}): number {
  const asked = argv.length === 0 || argv.includes('--help') || argv.includes('-h');
  (asked ? context.stdout : context.stderr).write(text);
  return asked ? EXIT.ok : EXIT.usage;
}
