// The teacher side of `dmd pairs`: what a teacher family samples for a pair and what conditions it.
// EDM: EDM's deterministic Heun sampler in pixel space, conditioned on class labels (with optional
// guidance). Stable Diffusion: DDIM (eta 0) with classifier-free guidance in latent space, conditioned on
// the prompts of a prompt file (the same file dmd-train takes), as DMD made its text-to-image pairs.
import path from 'node:path';
import type { Tensor } from '../../tensor/tensor.js';
import { tidy, unkeep } from '../../tensor/scope.js';
import type { Device } from '../../tensor/device.js';
import { oneHot } from '../../nn/functional.js';
import { detectFormat, loadEDM, readEDMInfo } from '../../edm/checkpoint.js';
import { sampleEDM } from '../../edm/sampler.js';
import { StableDiffusion } from '../../sd/pipeline.js';
import { generatorTimestep, isStableDiffusion } from '../../sd/checkpoint.js';
import { ddimSample } from '../../sd/sampler.js';
import { ddimTimesteps } from '../../sd/schedule.js';
import { readPrompts } from '../../sd/prompts.js';
import { pathSha256 } from '../../util/fs.js';
import { PairsError, type PairsConfig, type PairsManifest } from './pairs-format.js';

export interface PairsTeacher {
  sampler: PairsManifest['sampler'];
  /** the shape of one sample (EDM: the image; SD: the latent) */
  sampleShape: number[];
  /** classes of a class-conditional EDM teacher (0 otherwise) */
  labelDim: number;
  /** the prompts of a text-conditioned teacher */
  prompts?: NonNullable<PairsManifest['prompts']>;
  /** the teacher's ODE output for noises z and condition indices (classes or prompts; null: unconditional) */
  sample(z: Tensor, index: Tensor | null): Tensor;
  /** the batch of --batch-size 0: what suits this teacher on this device */
  defaultBatch: number;
  /** the sampler in a few words */
  describe(): string;
  dispose(): void;
}

export function openPairsTeacher(file: string, cfg: PairsConfig, device: Device): PairsTeacher {
  return isStableDiffusion(file) ? sdTeacher(file, cfg, device) : edmTeacher(file, cfg, device);
}

function edmTeacher(file: string, cfg: PairsConfig, device: Device): PairsTeacher {
  if (cfg.prompts || cfg.resolution !== undefined || cfg.teacherConfig)
    throw new PairsError(`--prompts, --resolution and --teacher-config are for Stable Diffusion teachers; ${file} is an EDM teacher (class-conditional: it takes no text)`);
  if (detectFormat(file) !== 'pkl' && readEDMInfo(file).role === 'generator') throw new PairsError(`--teacher ${file} is a one-step generator from dmd-train; pairs come from the EDM teacher's ODE`);
  const net = loadEDM(file, { device });
  const c = net.config;
  const steps = cfg.steps ?? 18;
  const guidance = cfg.guidance ?? 1;
  if (guidance !== 1 && !c.label_dim) {
    net.dispose();
    throw new PairsError('--guidance needs a class-conditional teacher');
  }
  return {
    sampler: { solver: 'heun', numSteps: steps, sigmaMin: cfg.sigmaMin, sigmaMax: cfg.sigmaMax, rho: cfg.rho, guidance, nfe: 2 * steps - 1 },
    sampleShape: [c.img_channels, c.img_resolution, c.img_resolution],
    labelDim: c.label_dim,
    sample: (z, index) => tidy(() => {
      const labels = index && c.label_dim ? oneHot(index, c.label_dim).to(device) : null;
      return sampleEDM(net, z, labels, { numSteps: steps, sigmaMin: cfg.sigmaMin, sigmaMax: cfg.sigmaMax, rho: cfg.rho, guidance }).x;
    }),
    // on a CPU a small batch keeps the activations in cache (the bundled teacher: 4.0 images/s at 32, 3.0 at
    // 128, 2.5 at 256 on a 2-core VM; its pairs were the same bits at batches 16 to 256, while other batch
    // sizes can change the outputs by the kernels' rounding)
    defaultBatch: device === 'cpu' ? 32 : 128,
    describe: () => `${steps} Heun steps, NFE ${2 * steps - 1}`,
    dispose: () => net.dispose(),
  };
}

function sdTeacher(file: string, cfg: PairsConfig, device: Device): PairsTeacher {
  if (generatorTimestep(file) !== null) throw new PairsError(`--teacher ${file} is a one-step generator from dmd-train; pairs come from the Stable Diffusion teacher's sampler`);
  if (!cfg.prompts) throw new PairsError(`--teacher ${file} is a Stable Diffusion model: give its prompts with --prompts FILE (the file dmd-train --prompts will take)`);
  const promptsFile = path.resolve(cfg.prompts);
  const prompts = readPrompts(promptsFile);
  const steps = cfg.steps ?? 50;
  const guidance = cfg.guidance ?? 3;
  if (!(guidance >= 1)) throw new PairsError(`--guidance ${guidance}: classifier-free guidance of a Stable Diffusion teacher must be >= 1 (1 = none)`);
  const sd = StableDiffusion.load(file, { device, config: cfg.teacherConfig });
  try {
    const T = sd.alphasCumprod.shape[0]!;
    if (steps > T) throw new PairsError(`--steps ${steps}: DDIM takes at most the schedule's ${T} steps`);
    const [h, w] = sd.latentSize(cfg.resolution ?? sd.config.unet.image_size * sd.factor);
    const ac = sd.alphasCumprod.toFloat64Array();
    const nfe = ddimTimesteps(steps, T).length * (guidance > 1 ? 2 : 1);
    return {
      sampler: { solver: 'ddim', numSteps: steps, guidance, nfe },
      sampleShape: [sd.latentChannels, h, w],
      labelDim: 0,
      prompts: { file: promptsFile, sha256: pathSha256(promptsFile), count: prompts.length },
      sample: (z, index) => tidy(() => {
        if (!index) throw new TypeError('internal: SD pairs need prompt indices');
        const rows = Array.from(index.to('cpu').toFloat64Array(), (i) => prompts[i]!);
        const cond = { context: sd.encodePrompts(rows), uncond: sd.uncond() };
        return unkeep(ddimSample(sd.epsModel(), z, cond, { steps, guidance, alphasCumprod: ac }).x0);
      }),
      defaultBatch: 16,
      describe: () => `DDIM ${steps} steps with guidance ${guidance}, NFE ${nfe}, ${prompts.length} prompts, latents ${sd.latentChannels}x${h}x${w}`,
      dispose: () => sd.dispose(),
    };
  } catch (e) {
    sd.dispose();
    throw e;
  }
}
