// npx tsx scripts/make-sd-checkpoint.ts --out sd15-random.safetensors [--config '{"unet":{"model_channels":64}}'] [--seed 0]
// An SD v1 single-file checkpoint (.safetensors, SD v1 key names) with freshly initialised weights and
// SD v1.5's architecture (860M UNet, 123M CLIP text encoder, 84M VAE), or another SD v1-family
// architecture given as a JSON config (the fields of sd/config.ts, merged over SD v1.5's). For checking
// the mechanics of a full-size run (memory, speed) where the real weights are not at hand: the images
// such a model makes are noise. The UNet's output convolutions, zero in a fresh ldm UNet, are filled
// with small random values so that its noise prediction is not identically zero.
import { StableDiffusion } from '../src/sd/pipeline.js';
import { noGrad, randn, Generator } from '../src/index.js';

const arg = (n: string, d?: string) => { const i = process.argv.indexOf(`--${n}`); return i >= 0 ? process.argv[i + 1]! : d; };
const out = arg('out');
if (!out) {
  console.error('usage: tsx scripts/make-sd-checkpoint.ts --out FILE.safetensors [--config JSON] [--seed N]');
  process.exit(2);
}
const seed = Number(arg('seed', '0'));
const config = JSON.parse(arg('config', '{}')!) as Record<string, unknown>;
const t0 = performance.now();
const sd = StableDiffusion.create(config, { seed });
const g = Generator.create('cpu', seed + 100);
noGrad(() => {
  for (const [name, p] of sd.unet.namedParameters()) if (name.startsWith('out.') && p.ndim > 1) p.copy_(randn(p.shape, { generator: g }).mul(1e-3));
});
sd.saveSingleFile(out, { metadata: { note: 'random weights (scripts/make-sd-checkpoint.ts): for mechanics only' } });
console.log(`${out}: ${sd.describe()}; written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
sd.dispose();
