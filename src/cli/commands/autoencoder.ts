import { command } from '../common.js';
import { AutoencoderConfigSchema, trainAutoencoder } from '../../sd/autoencoder.js';
import { reportHooks } from '../../report/report.js';

export const autoencoderCommand = command({
  name: 'autoencoder',
  describe: 'train a small KL autoencoder of the SD family (the latent space of a text-to-image teacher made here)',
  schema: AutoencoderConfigSchema,
  async run(cfg) {
    const r = await trainAutoencoder(cfg, console.log, { hooks: reportHooks(cfg.out) });
    console.log(`${r.status === 'done' ? 'finished' : 'stopped'}: ${r.steps} steps (${(r.seconds / 60).toFixed(1)} min in this process)`);
  },
});
