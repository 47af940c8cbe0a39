import { command } from '../common.js';
import { PairsConfigSchema, makePairs } from '../../dmd/regression/pairs.js';

export const pairsCommand = command({
  name: 'pairs',
  describe: "make DMD's regression dataset: noises z and the teacher's Heun ODE outputs y (sharded, resumable)",
  schema: PairsConfigSchema,
  async run(cfg) {
    await makePairs(cfg);
  },
});
