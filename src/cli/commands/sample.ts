// dmd sample: images from a one-step generator (--generator) or from a teacher with EDM's Heun
// sampler (--teacher, --steps), as one grid PNG or a directory of PNGs. Stable Diffusion teachers and
// generators (prompts instead of classes) go through sample-sd.ts.
import path from 'node:path';
import { z } from 'zod';
import { command } from '../common.js';
import { resolveDevice } from '../../tensor/device.js';
import { ensureDir, ensureParentDir } from '../../util/fs.js';
import { fields } from '../../util/fields.js';
import { loadImageModel } from '../../edm/image-model.js';
import { randn, Generator, tidy, noGrad, tensor, cat, type Tensor } from '../../tensor/index.js';
import { oneHot } from '../../nn/functional.js';
import { saveGrid, saveImages } from '../../data/grid.js';
import { isStableDiffusion } from '../../sd/checkpoint.js';
import { sampleSD } from './sample-sd.js';

export const SampleConfigSchema = z.object({
  generator: z.string().min(1).optional().describe('one-step generator file (from dmd-train)'),
  teacher: z.string().min(1).optional().describe('teacher file, sampled with Heun (EDM) or DDIM/Euler/Heun (an SD v1 checkpoint or diffusers folder); default when no --generator: the bundled teacher'),
  steps: z.number().int().positive().optional().describe('sampler steps for --teacher (default: EDM Heun 18, SD 25)'),
  guidance: z.number().positive().optional().describe('classifier-free guidance weight for --teacher (default: EDM 1, SD 7.5; at least 1 for SD)'),
  prompt: z.array(z.string()).optional().describe('text prompt for a Stable Diffusion teacher or generator (repeat for several; one image each)'),
  prompts: z.string().min(1).optional().describe('a file of prompts: one per line, or JSON Lines with a "text" field (.jsonl)'),
  size: z.number().int().positive().optional().describe("SD image size in pixels, a multiple of 8 (default: the model's)"),
  sampler: z.enum(['ddim', 'euler', 'heun']).default('ddim').describe('sampler of an SD teacher'),
  dtype: fields.dtype(),
  teacherConfig: z.string().min(1).optional().describe('an LDM config (v1-inference.yaml) giving the architecture of an SD --teacher checkpoint'),
  ema: z.boolean().optional().describe("use an SD checkpoint's EMA weights (model_ema.*; default: when it has them)"),
  count: z.number().int().positive().default(64).describe('number of images'),
  labels: z.array(z.number().int().min(0)).optional().describe('class labels to cycle through (default: all classes, balanced)'),
  out: z.string().min(1, 'must not be empty').default('samples.png').describe('a .png grid, or a directory for one PNG per image'),
  batchSize: fields.batchSize(256, 'images per network batch'),
  seed: fields.seed('noise seed'),
  device: fields.device(),
});

export const sampleCommand = command({
  name: 'sample',
  describe: 'make images with a one-step generator (or a teacher with Heun)',
  schema: SampleConfigSchema,
  run(cfg) {
    const modelFile = cfg.generator ?? cfg.teacher;
    if ((modelFile && isStableDiffusion(modelFile)) || cfg.prompt || cfg.prompts) {
      if (!modelFile) throw new RangeError('prompts need a Stable Diffusion model: --teacher sd.safetensors (or a diffusers folder) or --generator from dmd-train');
      if (!isStableDiffusion(modelFile)) throw new RangeError(`${modelFile}: --prompt/--prompts need a Stable Diffusion model; this is a class-conditional EDM network (use --labels)`);
      sampleSD({ ...cfg, device: cfg.device });
      return;
    }
    const device = resolveDevice(cfg.device);
    const toGrid = cfg.out.toLowerCase().endsWith('.png');
    if (toGrid) ensureParentDir(cfg.out, '--out');
    else ensureDir(cfg.out, '--out');
    const model = loadImageModel({ ...cfg, steps: cfg.steps ?? 18, guidance: cfg.guidance ?? 1, device });
    const c = model.net.config;
    if (cfg.labels && !c.label_dim) {
      model.net.dispose();
      throw new RangeError('--labels: the network is unconditional (label_dim 0)');
    }
    const gen = Generator.create('cpu', cfg.seed);
    const classes = cfg.labels ?? Array.from({ length: c.label_dim }, (_, i) => i);
    if (classes.some((l) => l >= c.label_dim)) {
      model.net.dispose();
      throw new RangeError(`--labels: the network has ${c.label_dim} classes (0..${c.label_dim - 1})`);
    }
    const t0 = performance.now();
    const parts: Tensor[] = [];
    for (let b = 0; b < cfg.count; b += cfg.batchSize) {
      const n = Math.min(cfg.batchSize, cfg.count - b);
      parts.push(noGrad(() => tidy(() => {
        const zz = randn([n, c.img_channels, c.img_resolution, c.img_resolution], { generator: gen }).to(device);
        const labels = c.label_dim
          ? oneHot(tensor(Array.from({ length: n }, (_, i) => classes[(b + i) % classes.length]!), { dtype: 'int64' }), c.label_dim).to(device)
          : null;
        return model.sample(zz, labels).to({ device: 'cpu', dtype: 'float32' }).clamp(-1, 1);
      })).keep());
    }
    const images = cat(parts);
    const secs = (performance.now() - t0) / 1000;
    if (toGrid) {
      saveGrid(images, cfg.out, c.label_dim && !cfg.labels ? c.label_dim : undefined);
    } else {
      saveImages(images, (i) => path.join(cfg.out, `${String(i).padStart(6, '0')}.png`));
    }
    console.log(`${cfg.count} images in ${secs.toFixed(2)} s (${(cfg.count / secs).toFixed(1)} img/s, ${model.oneStep ? '1 step' : `Heun ${cfg.steps ?? 18} steps, NFE ${model.nfe}`}) -> ${cfg.out}`);
    model.net.dispose();
  },
});
