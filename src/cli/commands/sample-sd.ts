// dmd sample for Stable Diffusion v1: prompts (--prompt, repeatable, or --prompts FILE) to images with
// the teacher's sampler (DDIM / Euler / Heun with classifier-free guidance) or with a one-step SD
// generator from dmd-train; the VAE decodes the latents. One image per prompt, as a grid or a directory.
import path from 'node:path';
import { StableDiffusion } from '../../sd/pipeline.js';
import { sdModelRole } from '../../sd/checkpoint.js';
import { readPrompts } from '../../sd/prompts.js';
import { resolveDevice, checkExecutionDType } from '../../tensor/device.js';
import { tidy, cat, type Tensor } from '../../tensor/index.js';
import { saveGrid, saveImages } from '../../data/grid.js';
import { ensureDir, ensureParentDir } from '../../util/fs.js';
import type { ExecutionDType } from '../../tensor/device.js';

export interface SDSampleSettings {
  teacher?: string | undefined;
  generator?: string | undefined;
  teacherConfig?: string | undefined;
  ema?: boolean | undefined;
  prompt?: string[] | undefined;
  prompts?: string | undefined;
  steps?: number | undefined;
  guidance?: number | undefined;
  size?: number | undefined;
  sampler: 'ddim' | 'euler' | 'heun';
  dtype: ExecutionDType;
  batchSize: number;
  seed: number;
  device: string;
  out: string;
}

function promptsOf(s: SDSampleSettings): string[] {
  const list = [...(s.prompt ?? []), ...(s.prompts ? readPrompts(s.prompts) : [])];
  if (!list.length) throw new RangeError('a Stable Diffusion model needs prompts: --prompt "..." (repeatable) or --prompts FILE');
  return list;
}

export function sampleSD(s: SDSampleSettings): void {
  const device = resolveDevice(s.device);
  checkExecutionDType(device, s.dtype);
  const prompts = promptsOf(s);
  if (s.guidance !== undefined && s.guidance < 1) throw new RangeError(`--guidance ${s.guidance}: classifier-free guidance must be >= 1 (1 = none)`);
  const file = (s.generator ?? s.teacher)!;
  const tG = sdModelRole(s, file);
  if (s.out.toLowerCase().endsWith('.png')) ensureParentDir(s.out, '--out');
  else ensureDir(s.out, '--out');
  const sd = StableDiffusion.load(file, { device, config: s.teacherConfig, ema: s.ema });
  try {
    const size = s.size ?? sd.config.unet.image_size * sd.factor;
    sd.latentSize(size);
    const t0 = performance.now();
    let images: Tensor;
    let how: string;
    if (tG !== null) {
      images = oneStep(sd, prompts, tG, size, s);
      how = `one step at t=${tG}`;
    } else {
      images = sd.sample(prompts, { steps: s.steps ?? 25, guidance: s.guidance ?? 7.5, size, seed: s.seed, sampler: s.sampler, dtype: s.dtype, batchSize: s.batchSize, warn: (m) => console.error(`warning: ${m}`) });
      how = `${s.sampler} ${s.steps ?? 25} steps, guidance ${s.guidance ?? 7.5}`;
    }
    const secs = (performance.now() - t0) / 1000;
    if (s.out.toLowerCase().endsWith('.png')) saveGrid(images, s.out, Math.ceil(Math.sqrt(prompts.length)));
    else saveImages(images, (i) => path.join(s.out, `${String(i).padStart(6, '0')}.png`));
    console.log(`${prompts.length} image(s) of ${size}x${size} in ${secs.toFixed(2)} s (${how}; ${sd.describe()}) -> ${s.out}`);
    images.dispose();
  } finally {
    sd.dispose();
  }
}

/** One-step images: the generator at its conditioning timestep on seeded Gaussian latents, in batches. */
function oneStep(sd: StableDiffusion, prompts: string[], t: number, size: number, s: SDSampleSettings): Tensor {
  const [h, w] = sd.latentSize(size);
  const parts: Tensor[] = [];
  for (let b = 0; b < prompts.length; b += s.batchSize) {
    const chunk = prompts.slice(b, b + s.batchSize);
    parts.push(tidy(() => sd.oneStep(sd.noise(chunk.length, b, s.seed, h, w), sd.encodePrompts(chunk, { dtype: s.dtype }), t, { dtype: s.dtype }).to('cpu')).keep());
  }
  const all = cat(parts);
  for (const p of parts) p.dispose();
  return all;
}
