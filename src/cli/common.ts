// Shared CLI plumbing: a command = a zod schema (flags + defaults) + a run function. Errors print a
// one-line message and exit 1 (never a stack trace for bad input).
import type { Argv, CommandModule } from 'yargs';
import type { z } from 'zod';
import { yargsOptions, resolveConfig, ConfigError } from './options.js';

export interface CommandSpec<S extends z.ZodObject<z.ZodRawShape>> {
  name: string;
  describe: string;
  schema: S;
  /** flags that are positional-like and required on the command line (shown in usage) */
  run(cfg: z.infer<S>): Promise<void> | void;
}

export function command<S extends z.ZodObject<z.ZodRawShape>>(spec: CommandSpec<S>): CommandModule {
  return {
    command: spec.name,
    describe: spec.describe,
    builder: (y: Argv) => y.options(yargsOptions(spec.schema)).option('config', { type: 'string', describe: 'YAML or JSON file of settings (flags override it)' }),
    handler: async (argv) => {
      const cfg = resolveConfig(spec.schema, argv as Record<string, unknown>, (argv as { config?: string }).config);
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
