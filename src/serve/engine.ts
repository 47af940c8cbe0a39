// What `dmd serve` computes with, in the thread that owns the model (model-thread.ts runs it off the
// event loop): a one-step generator or a teacher, EDM (classes) or Stable Diffusion (prompts), loaded
// once; `run` makes the images of several requests in as few network calls as the model allows and
// returns them as 8-bit pixels. Each request's noise comes from its own seed, so its images do not
// depend on what it was batched with.
import { tidy, noGrad, cat, randn, tensor, Generator, type Device } from '../tensor/index.js';
import { oneHot } from '../nn/functional.js';
import { loadImageModel } from '../edm/image-model.js';
import { StableDiffusion } from '../sd/pipeline.js';
import { sdModelRole, isStableDiffusion } from '../sd/checkpoint.js';
import { imagePixels, type ImagePixels } from '../data/grid.js';

export interface EngineOptions {
  generator?: string | undefined;
  teacher?: string | undefined;
  /** sampler steps of a teacher (default: EDM Heun 18, SD DDIM 25) */
  steps?: number | undefined;
  /** classifier-free guidance of a teacher (default: EDM 1, SD 7.5) */
  guidance?: number | undefined;
  device: Device;
}

/** What the page and the API say about the model. */
export interface ModelInfo {
  model: string;
  /** classes of a class-conditional EDM model (0: unconditional or text-to-image) */
  labelDim: number;
  /** prompts instead of classes (Stable Diffusion) */
  textToImage: boolean;
  oneStep: boolean;
  /** network evaluations per image */
  nfe: number;
  resolution: number;
  channels: number;
}

/** One request's part of a batch: classes (EDM) or prompts (SD), one per image. */
export interface EngineItem {
  count: number;
  seed: number;
  classes?: number[];
  prompts?: string[];
}

export interface Engine {
  readonly info: ModelInfo;
  /** images of each item, in order */
  run(items: readonly EngineItem[]): ImagePixels[];
  dispose(): void;
}

/** Loads the model that serve options name (default without one: the bundled EDM teacher). */
export function loadEngine(o: EngineOptions): Engine {
  const file = o.generator ?? o.teacher;
  return file !== undefined && isStableDiffusion(file) ? sdEngine(o, file) : edmEngine(o);
}

function edmEngine(o: EngineOptions): Engine {
  const model = loadImageModel({ ...o, steps: o.steps ?? 18, guidance: o.guidance ?? 1 });
  const c = model.net.config;
  const info: ModelInfo = { model: model.file, labelDim: c.label_dim, textToImage: false, oneStep: model.oneStep, nfe: model.nfe, resolution: c.img_resolution, channels: c.img_channels };
  return {
    info,
    run(items) {
      const x = noGrad(() => tidy(() => {
        const z = cat(items.map((p) => randn([p.count, c.img_channels, c.img_resolution, c.img_resolution], { generator: Generator.create('cpu', p.seed) }))).to(o.device);
        const labels = c.label_dim ? oneHot(tensor(items.flatMap((p) => p.classes ?? []), { dtype: 'int64' }), c.label_dim).to(o.device) : null;
        return model.sample(z, labels).clamp(-1, 1);
      }));
      try {
        return split(imagePixels(x), items);
      } finally {
        x.dispose();
      }
    },
    dispose: () => model.net.dispose(),
  };
}

function sdEngine(o: EngineOptions, file: string): Engine {
  const t = sdModelRole(o, file);
  const sd = StableDiffusion.load(file, { device: o.device });
  const steps = o.steps ?? 25;
  const guidance = o.guidance ?? 7.5;
  if (t === null && !(guidance >= 1)) {
    sd.dispose();
    throw new RangeError(`--guidance ${guidance}: classifier-free guidance of a Stable Diffusion teacher must be >= 1 (1 = none)`);
  }
  const size = sd.config.unet.image_size * sd.factor;
  const [h, w] = sd.latentSize(size);
  const info: ModelInfo = { model: file, labelDim: 0, textToImage: true, oneStep: t !== null, nfe: t !== null ? 1 : steps * (guidance > 1 ? 2 : 1), resolution: size, channels: 3 };
  const promptsOf = (p: EngineItem) => {
    if (p.prompts?.length !== p.count) throw new RangeError(`internal: ${p.prompts?.length ?? 0} prompts for ${p.count} images`);
    return p.prompts;
  };
  return {
    info,
    run(items) {
      if (t !== null) {
        // one network call for every request: each request's latents from its own seed
        const x = noGrad(() => tidy(() => {
          const z = cat(items.map((p) => sd.noise(p.count, 0, p.seed, h, w)));
          return sd.oneStep(z, sd.encodePrompts(items.flatMap(promptsOf)), t);
        }));
        try {
          return split(imagePixels(x), items);
        } finally {
          x.dispose();
        }
      }
      return items.map((p) => {
        const x = sd.sample(promptsOf(p), { steps, guidance, seed: p.seed, batchSize: p.count });
        try {
          return split(imagePixels(x), [p])[0]!;
        } finally {
          x.dispose();
        }
      });
    },
    dispose: () => sd.dispose(),
  };
}

function split(all: ImagePixels, items: readonly EngineItem[]): ImagePixels[] {
  const size = all.height * all.width * all.channels;
  let at = 0;
  return items.map((p) => {
    // each item gets its own buffer, so that it can be transferred to another thread alone
    const part: ImagePixels = { ...all, n: p.count, data: all.data.slice(at * size, (at + p.count) * size) };
    at += p.count;
    return part;
  });
}
