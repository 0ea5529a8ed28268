// What argv names, from the commands' paths alone (`[['image', 'ls'], ['images']]`): no
// command class and no clipanion, so that the bundle's entry (tableMain.ts) can tell which
// commands to load before it loads any, and the command table (scripts/commandTable.js)
// which groups have a help.
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
 * Whether argv may mean a command of these paths though options come first (`strata
 * --store DIR ps`): a path's words all appear, in order, among argv's words that are no
 * options. A superset of what clipanion can parse to them (an option's value is a word too),
 * so registering only these commands finds what registering every one would, when it finds
 * anything (tableMain.ts registers every command when they parse to nothing).
 */
export function mayMean(paths: Paths, argv: readonly string[]): boolean {
  const words = argv.filter(a => !a.startsWith('-'));
  return paths.some(p => {
    if (p.length === 0) return false;
    let i = 0;
    for (const w of words) if (w === p[i] && ++i === p.length) return true;
    return false;
  });
}

/**
 * The key a command's code caches are kept by (packages/cli/bin/strata.js): its path
 * joined by `-` (`ps`, `image-inspect`); undefined for a path of other words.
 */
export function cacheKey(path: readonly string[] | undefined): string | undefined {
  return path !== undefined && path.length > 0 && path.every(w => /^[a-z]+$/.test(w)) ? path.join('-') : undefined;
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

/**
 * argv as strata routes it: `strata help [COMMAND...]` as `strata [COMMAND...] --help` (as
 * git, docker and podman take it), and `strata fs CONTAINER OP` as containerFirst says.
 */
export function routable(argv: readonly string[]): string[] {
  return containerFirst(argv[0] === 'help' ? [...argv.slice(1), '--help'] : argv);
}

/**
 * The usage error for leading words that name no command (`strata imgaes`, `strata image
 * inspct`), with the nearest command word when one is close; undefined when they name a
 * command or a group, or when argv starts with an option (clipanion's own errors then).
 */
export function unknownCommand(argv: readonly string[], paths: Paths): string | undefined {
  const words = leadingWords(argv);
  const starts = (n: number) => paths.some(p => p.length >= n && words.slice(0, n).every((w, i) => w === p[i]));
  let known = 0;
  while (known < words.length && starts(known + 1)) known++;
  const group = words.slice(0, known);
  if (known === words.length || paths.some(p => p.length === known && group.every((w, i) => w === p[i]))) return undefined;
  const next = [...new Set(paths.filter(p => p.length > known && group.every((w, i) => w === p[i])).map(p => p[known]!))];
  const nearest = (typed: string) => next.map(w => ({w, d: editDistance(typed, w)})).filter(x => x.d <= Math.min(2, x.w.length - 1)).sort((a, b) => a.d - b.d)[0];
  // `strata fs CONTAINER OP`: the misspelt word is the operation, unless the first is nearly one.
  const typed = group.length === 1 && group[0] === 'fs' && words.length > 2 && !((nearest(words[1]!)?.d ?? 2) <= 1) ? words[2]! : words[known]!;
  const near = nearest(typed);
  const name = (w: string) => ['strata', ...group, w].join(' ');
  return `strata: there is no command "${name(typed)}"${near ? ` (did you mean "${name(near.w)}"?)` : ''}; "${['strata', ...group].join(' ')} --help" lists the commands\n`;
}

/** Levenshtein distance: the fewest one-letter insertions, deletions and substitutions from a to b. */
function editDistance(a: string, b: string): number {
  let row = Array.from({length: b.length + 1}, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}
