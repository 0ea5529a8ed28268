import {Command, Option, UsageError} from 'clipanion';
import {BaseCommand} from '../BaseCommand.js';

export class RunCommand extends BaseCommand {
  static override paths = [['run']];
  static override usage = Command.Usage({
    category: 'Containers',
    description: 'run a process in a container, in the foreground',
    details: `
      Given an image, creates a container of it first (named with --name); given a container, runs in it. Mounts the container (see \`strata mount\`), starts the image's entrypoint and cmd (or CMD ARG... after --, which replaces the cmd) with its env, working dir and user, through runc, and passes stdout, stderr, signals and the exit code through; stdin only with -i or -t. Unmounts afterwards (unless it was mounted before); with --rm, also removes the container. Its changes stay in the container: \`strata diff\` shows them, \`strata commit\` makes an image of them.

      The process gets its own pid, mount, ipc, uts and network namespaces (no network but loopback). Needs root and runc.
    `,
    examples: [
      ['Run a command in a new container of an image, and remove it afterwards', '$0 run --rm base:1 -- ls /etc'],
      ['Run a shell in a named container, with a terminal', '$0 run --name web -i -t base:1 -- sh'],
    ],
  });

  rm = Option.Boolean('--rm', false, {description: 'remove the container when the process ends'});
  name = Option.String('--name', {description: 'the name of the container to create (with an IMAGE)'});
  interactive = Option.Boolean('-i,--interactive', false, {description: 'keep stdin open to the process'});
  tty = Option.Boolean('-t,--tty', false, {description: 'give the process a terminal'});
  target = Option.String({name: 'IMAGE|CONTAINER'});
  command = Option.Rest({name: 'CMD'});

  async run(): Promise<number> {
    // Before anything is made: a refused -t leaves no container behind.
    if (this.tty && !process.stdin.isTTY) throw new UsageError('-t gives the process a terminal, but standard input is not one: run from a terminal, or leave -t out');
    const {createContainer, resolveContainer, runContainer, UnionError} = await import('@strata/union');
    const {containerLayers} = await import('../../layers.js');
    const store = await this.openStore();
    let container;
    try {
      container = await resolveContainer(store, this.target);
      if (this.name !== undefined) throw new UsageError(`${this.target} is a container; --name names a new container made from an image`);
    } catch (err) {
      if (!(err instanceof UnionError && err.code === 'UNKNOWN_CONTAINER')) throw err;
      container = await createContainer(store, {image: this.target, ...(this.name !== undefined ? {name: this.name} : {})});
    }
    const layers = await containerLayers(store);
    const command = this.command[0] === '--' ? this.command.slice(1) : this.command;
    // runc works for as long as the process lives: the store is let go meanwhile, so other
    // strata commands (diff, ps) can look at the running container.
    let code: number;
    try {
      code = await runContainer(layers, container, {command, interactive: this.interactive, terminal: this.tty, removeAfter: this.rm, beforeStart: () => this.closeStore()});
    } finally {
      if (this.rm) {
        const again = await this.openStore();
        await (await containerLayers(again)).remove(container, {force: true});
      }
    }
    return code;
  }
}
