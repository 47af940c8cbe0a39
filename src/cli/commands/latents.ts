import { command } from '../common.js';
import { LatentsConfigSchema, makeLatents } from '../../sd/latents.js';

export const latentsCommand = command({
  name: 'latents',
  describe: "encode captioned real images once with an SD teacher's VAE for DMD2's GAN (dmd-train --gan --data DIR; sharded, resumable)",
  schema: LatentsConfigSchema,
  async run(cfg) {
    await makeLatents(cfg);
  },
});
