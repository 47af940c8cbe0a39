#!/usr/bin/env node
// dmd-train: distill an EDM teacher into a one-step generator (DMD / DMD2).
//   npx dmd-train --teacher edm.pt --out runs/x [--pairs DIR] [--data ...] [--config file.yaml] [--steps N] ...
import { command, main } from './common.js';
import { DMDConfigSchema } from '../dmd/config.js';
import { DMDTrainer } from '../dmd/trainer.js';
import { applyRecipe } from '../dmd/recipes.js';

await main({
  name: 'dmd-train',
  usage: '$0 [--teacher edm.pt] [--out runs/x] [options]\n\nDistills an EDM teacher into a one-step generator (DMD / DMD2). Settings come from the flags below, optionally a --config YAML/JSON file (flags win).',
  commands: [
    command({
      name: '$0',
      describe: 'distill an EDM teacher into a one-step generator',
      schema: DMDConfigSchema,
      // the default plan without Fashion-MNIST installed falls back to regression alone, and says so here
      prepare: (input) => applyRecipe(input, { notice: (s) => console.log(`note: ${s}`) }),
      async run(cfg) {
        const trainer = await DMDTrainer.create(cfg);
        try {
          await trainer.train();
        } finally {
          trainer.dispose();
        }
      },
    }),
  ],
});
