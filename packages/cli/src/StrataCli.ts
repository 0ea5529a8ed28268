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
      command = this.process(input, context);
    } catch (error) {
      context.stderr.write(this.error(error, {colored: this.enableColors ?? context.colorDepth > 1}));
      return EXIT.usage;
    }
    return super.run(command, context);
  }
}
