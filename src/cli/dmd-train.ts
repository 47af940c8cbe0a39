#!/usr/bin/env node
// dmd-train: distill an EDM teacher into a one-step generator (DMD / DMD2).
//   npx dmd-train --teacher edm.pt --out runs/x [--pairs DIR] [--data ...] [--config file.yaml] [--steps N] ...
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { yargsOptions, resolveConfig } from './options.js';
import { reportAndExit } from './common.js';
import { DMDConfigSchema } from '../dmd/config.js';
import { DMDTrainer } from '../dmd/trainer.js';

try {
  const argv = await yargs(hideBin(process.argv))
    .scriptName('dmd-train')
    .usage('$0 [--teacher edm.pt] [--out runs/x] [options]\n\nDistills an EDM teacher into a one-step generator (DMD / DMD2). Settings come from the flags below, optionally a --config YAML/JSON file (flags win).')
    .options(yargsOptions(DMDConfigSchema))
    .option('config', { type: 'string', describe: 'YAML or JSON file of settings (flags override it)' })
    .strict()
    .fail((msg, err) => reportAndExit(err ?? new Error(msg)))
    .help()
    .parseAsync();
  const cfg = resolveConfig(DMDConfigSchema, argv as Record<string, unknown>, argv.config);
  const trainer = new DMDTrainer(cfg);
  const r = await trainer.train();
  trainer.dispose();
  process.exitCode = 0;
  void r;
} catch (e) {
  reportAndExit(e);
}
