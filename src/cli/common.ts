// Shared CLI plumbing: a command = a zod schema (flags + defaults) + a run function; `main` parses the
// command line with the word-wrapping yargs build and reports every error as one line naming the
// problem (exit 1; a stack trace only with DMD_DEBUG=1).
import type { Argv, CommandModule } from 'yargs';
import type { z } from 'zod';
import { yargs, hideBin } from './yargs.js';
import { yargsOptions, resolveConfig, ConfigError } from './options.js';
import { spawnWorkers } from '../distributed/spawn.js';
import { planNode, type LaunchFlags } from '../distributed/launch.js';
import { DistributedError } from '../distributed/context.js';

export interface CommandSpec<S extends z.ZodObject<z.ZodRawShape>> {
  /** the command's name ('$0' for a program with a single command) and positional usage */
  name: string;
  describe: string;
  schema: S;
  /** fills defaults that depend on other settings (dmd-train's --recipe) before validation */
  prepare?(input: Record<string, unknown>): Record<string, unknown>;
  run(cfg: z.infer<S>): Promise<void> | void;
}

export function command<S extends z.ZodObject<z.ZodRawShape>>(spec: CommandSpec<S>): CommandModule {
  return {
    command: spec.name,
    describe: spec.describe,
    builder: (y: Argv) => y.options(yargsOptions(spec.schema)).option('config', { type: 'string', requiresArg: true, describe: 'YAML or JSON file of settings (flags override it)' }),
    handler: async (argv) => {
      const cfg = resolveConfig(spec.schema, argv as Record<string, unknown>, (argv as { config?: string }).config, spec.prepare);
      // --nproc-per-node N (--nnodes M): this process only launches this machine's workers of the same command (each sees RANK)
      const plan = planNode(cfg as LaunchFlags);
      if (plan) {
        const r = await spawnWorkers(plan);
        if (r.signal) {
          // stopped by the user or the scheduler: say so and exit as a process killed by that signal would
          process.stderr.write(`${r.message}\n`);
          process.exit(r.code);
        }
        if (r.code !== 0) throw new DistributedError(r.message);
        return;
      }
      await spec.run(cfg);
    },
  };
}

/** Prints an error the way the CLI reports bad input: one line, the message, exit code 1. */
export function reportAndExit(e: unknown): never {
  const msg = e instanceof Error ? e.message : String(e);
  const known = e instanceof ConfigError || (e instanceof Error && typeof (e as { code?: unknown }).code === 'string');
  process.stderr.write(`error: ${msg}\n`);
  if (!known && e instanceof Error && process.env.DMD_DEBUG) process.stderr.write(`${e.stack}\n`);
  process.exit(1);
}

/** Runs a program made of commands (or one '$0' command), with --help, strict flags and one-line errors. */
export async function main(o: { name: string; usage?: string; commands: CommandModule[] }): Promise<void> {
  try {
    let y = yargs(hideBin(process.argv)).scriptName(o.name);
    if (o.usage) y = y.usage(o.usage);
    for (const c of o.commands) y = y.command(c);
    if (o.commands.length > 1 || o.commands[0]?.command !== '$0') y = y.demandCommand(1, 'name a command (see --help)');
    await y
      .strict()
      .wrap(Math.min(110, process.stdout.columns || 100))
      .fail((msg, err) => reportAndExit(err ?? new ConfigError(msg)))
      .help()
      .parseAsync();
  } catch (e) {
    reportAndExit(e);
  }
}
