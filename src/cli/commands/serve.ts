import { command } from '../common.js';
import { ServeConfigSchema, startServer } from '../../serve/server.js';

export const serveCommand = command({
  name: 'serve',
  describe: 'a demo page and JSON/PNG API for a one-step generator (dynamic batching; 127.0.0.1 by default)',
  schema: ServeConfigSchema,
  async run(cfg) {
    const s = await startServer(cfg);
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        console.log(`${sig}: closing the server`);
        void s.close().then(resolve);
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    console.log(`served ${s.batcher.stats.requests} requests in ${s.batcher.stats.batches} batches`);
  },
});
