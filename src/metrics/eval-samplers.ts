// What `dmd eval` draws its samples from, for each model family: an EDM generator or teacher (class-
// balanced labels), or a Stable Diffusion generator or teacher (the prompts of a prompt file, cycled,
// each sample asking for its prompt's class when the file gives one). Sample i's noise depends only on
// the seed and i (EDM: on its batch), so processes can share the batches.
import path from 'node:path';
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { randn, Generator, deriveSeed } from '../tensor/random.js';
import { tensor } from '../tensor/create.js';
import type { Device, ExecutionDType } from '../tensor/device.js';
import { oneHot } from '../nn/functional.js';
import { loadImageModel } from '../edm/image-model.js';
import { StableDiffusion } from '../sd/pipeline.js';
import { sdModelRole, isStableDiffusion } from '../sd/checkpoint.js';
import { readPromptRecords, type PromptRecord } from '../sd/prompts.js';
import type { ImageSpec } from './classifier.js';

export interface EvalSamplerOptions {
  generator?: string | undefined;
  teacher?: string | undefined;
  steps?: number | undefined;
  guidance?: number | undefined;
  prompts?: string | undefined;
  size?: number | undefined;
  teacherConfig?: string | undefined;
  dtype?: ExecutionDType | undefined;
  device: Device;
}

export interface EvalSampler {
  /** the model file */
  file: string;
  /** 'one-step', 'heun-18', 'ddim-25-cfg7.5' */
  mode: string;
  nfe: number;
  /** the images' channels and size; label_dim: the classes samples ask for (0 when they ask for none) */
  spec: ImageSpec;
  parameters: number;
  /** Images in [-1, 1] of batch b, which holds samples [first, first + n). */
  sample(b: number, first: number, n: number, seed: number): Tensor;
  /** the class sample i asks for, or null */
  askedClass(i: number): number | null;
  /** the prompts of samples [first, first + n) (text-to-image models), or null */
  promptsOf(first: number, n: number): string[] | null;
  /** a few words on what the samples are conditioned on, for the results */
  conditioning: string;
  dispose(): void;
}

export class EvalSamplerError extends Error {
  readonly code = 'ERR_EVAL';
}

/** Class-balanced labels for samples [first, first + n): sample i gets class i mod classes. */
export function balancedLabels(first: number, n: number, classes: number): number[] {
  return Array.from({ length: n }, (_, i) => (classes ? (first + i) % classes : 0));
}

export function openEvalSampler(o: EvalSamplerOptions): EvalSampler {
  const file = o.generator ?? o.teacher;
  if (file !== undefined && isStableDiffusion(file)) return sdSampler(o, file);
  if (o.prompts || o.size !== undefined || o.teacherConfig) throw new EvalSamplerError('--prompts, --size and --teacher-config are for Stable Diffusion models; this is an EDM model (class-conditional: it takes no text)');
  return edmSampler(o);
}

function edmSampler(o: EvalSamplerOptions): EvalSampler {
  const steps = o.steps ?? 18;
  const model = loadImageModel({ ...o, steps, guidance: o.guidance ?? 1 });
  const c = model.net.config;
  const classes = c.label_dim;
  return {
    file: model.file,
    mode: model.oneStep ? 'one-step' : `heun-${steps}`,
    nfe: model.nfe,
    spec: { img_channels: c.img_channels, img_resolution: c.img_resolution, label_dim: classes },
    parameters: model.net.parameterCount(),
    conditioning: classes ? `${classes} classes, balanced` : 'unconditional',
    sample: (b, first, n, seed) => tidy(() => {
      const z = randn([n, c.img_channels, c.img_resolution, c.img_resolution], { generator: Generator.create('cpu', deriveSeed(seed, b)) }).to(o.device);
      const labels = classes ? oneHot(tensor(balancedLabels(first, n, classes), { dtype: 'int64' }), classes).to(o.device) : null;
      return model.sample(z, labels).clamp(-1, 1);
    }),
    askedClass: (i) => (classes ? i % classes : null),
    promptsOf: () => null,
    dispose: () => model.net.dispose(),
  };
}

function sdSampler(o: EvalSamplerOptions, file: string): EvalSampler {
  const t = sdModelRole(o, file);
  if (!o.prompts) throw new EvalSamplerError(`${file} is a Stable Diffusion model: give the evaluation prompts with --prompts FILE (one per line, or JSON Lines with "text" and optionally "class")`);
  const records: PromptRecord[] = readPromptRecords(o.prompts);
  const withClass = records.filter((r) => r.class !== undefined).length;
  if (withClass && withClass < records.length) throw new EvalSamplerError(`--prompts ${o.prompts}: ${withClass} of ${records.length} prompts give a "class"; give it for every prompt or for none`);
  const classes = withClass ? Math.max(...records.map((r) => r.class!)) + 1 : 0;
  const steps = o.steps ?? 25;
  const guidance = o.guidance ?? 7.5;
  if (t === null && !(guidance >= 1)) throw new EvalSamplerError(`--guidance ${guidance}: classifier-free guidance of a Stable Diffusion teacher must be >= 1 (1 = none)`);
  const sd = StableDiffusion.load(file, { device: o.device, config: o.teacherConfig });
  try {
    const size = o.size ?? sd.config.unet.image_size * sd.factor;
    const [h, w] = sd.latentSize(size);
    const textOf = (first: number, n: number) => Array.from({ length: n }, (_, i) => records[(first + i) % records.length]!.text);
    return {
      file,
      mode: t !== null ? 'one-step' : `ddim-${steps}-cfg${guidance}`,
      nfe: t !== null ? 1 : steps * (guidance > 1 ? 2 : 1),
      spec: { img_channels: sd.config.vae.ddconfig.out_ch, img_resolution: size, label_dim: classes },
      parameters: sd.unet.parameterCount(),
      conditioning: `${records.length} prompts from ${path.basename(o.prompts)}, cycled${classes ? `, asking for ${classes} classes` : ''}`,
      sample: (_b, first, n, seed) => {
        if (t !== null) return tidy(() => sd.oneStep(sd.noise(n, first, seed, h, w), sd.encodePrompts(textOf(first, n), { dtype: o.dtype }), t, { dtype: o.dtype }));
        return sd.sample(textOf(first, n), { steps, guidance, seed, size, dtype: o.dtype, batchSize: n, firstIndex: first });
      },
      askedClass: (i) => records[i % records.length]!.class ?? null,
      promptsOf: textOf,
      dispose: () => sd.dispose(),
    };
  } catch (e) {
    sd.dispose();
    throw e;
  }
}
