import {Cli, type BaseContext, type Command} from 'clipanion';

/** Exit codes scripts can trust (README, "Exit codes"). */
export const EXIT = {ok: 0, failure: 1, usage: 2, problems: 3, busy: 75} as const;

/**
 * clipanion's Cli, with parse errors sent to stderr (stdout stays clean for --json) and
 * given exit code 2, as usage errors are by convention.
 */
export class StrataCli extends Cli<BaseContext> {
  // @ts-expect-error clipanion overloads run() on a void context; strata always passes one
  override async run(input: Command<BaseContext> | string[], userContext: Partial<BaseContext> = {}): Promise<number> {
    if (!Array.isArray(input)) return super.run(input, userContext);
    const context = {...Cli.defaultContext, ...userContext};
    let command: Command<BaseContext>;
    try {
      command = this.process(containerFirst(input), context);
    } catch (error) {
      context.stderr.write(this.error(error, {colored: this.enableColors ?? context.colorDepth > 1}));
      return EXIT.usage;
    }
    return super.run(command, context);
  }
}

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
