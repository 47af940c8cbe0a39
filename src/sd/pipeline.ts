// A Stable Diffusion v1 model as one object: the text encoder with its tokenizer, the latent UNet, the
// VAE and the schedule. Prompts to embeddings (the empty prompt's cached for guidance), latents to
// images and back, sampling with DDIM or Euler/Heun and classifier-free guidance, the DMD score model of
// the teacher (dmd/models/sd.ts), and writing the whole as an SD v1 single-file checkpoint.
import path from 'node:path';
import { Tensor } from '../tensor/tensor.js';
import { tidy, keep, dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { randn, Generator, deriveSeed } from '../tensor/random.js';
import { cat, full } from '../tensor/create.js';
import type { Device, ExecutionDType } from '../tensor/device.js';
import { writeSafetensors } from '../io/safetensors.js';
import { parseStableDiffusionConfig, vaeFactor, type StableDiffusionConfig, type StableDiffusionConfigInput } from './config.js';
import { SDUNet } from './unet.js';
import { CLIPTextEncoder } from './clip.js';
import { AutoencoderKL } from './vae.js';
import { CLIPTokenizer } from './tokenizer.js';
import { alphasCumprod, x0FromEps } from './schedule.js';
import { ddimSample, kSample, type EpsModel } from './sampler.js';
import { loadStableDiffusion, UNET_PREFIX, VAE_PREFIX, TEXT_PREFIX, type SDLoadOptions, type StableDiffusionParts } from './checkpoint.js';

export type SDSamplerName = 'ddim' | 'euler' | 'heun';

export interface SDSampleOptions {
  steps?: number;
  /** classifier-free guidance weight (>= 1; 1 = none) */
  guidance?: number;
  /** image size in pixels (a multiple of the VAE's downsampling, 8) */
  size?: number | [number, number];
  seed?: number;
  sampler?: SDSamplerName;
  dtype?: ExecutionDType;
  /** prompts per network batch */
  batchSize?: number;
  /** hears of truncated prompts */
  warn?: (msg: string) => void;
  /** the index of the first prompt among all of a job's (its noise is drawn for that index: default 0) */
  firstIndex?: number;
}

export class StableDiffusion {
  readonly config: StableDiffusionConfig;
  readonly unet: SDUNet;
  readonly text: CLIPTextEncoder;
  readonly vae: AutoencoderKL;
  readonly tokenizer: CLIPTokenizer;
  /** alphas_cumprod, float32 [T] */
  readonly alphasCumprod: Tensor;
  readonly source: StableDiffusionParts['source'] | null;
  private uncondCache = new Map<string, Tensor>();

  constructor(p: Omit<StableDiffusionParts, 'source'> & { source?: StableDiffusionParts['source'] | null }) {
    this.config = p.config;
    this.unet = p.unet;
    this.text = p.text;
    this.vae = p.vae;
    this.tokenizer = p.tokenizer;
    this.source = p.source ?? null;
    this.alphasCumprod = keep(alphasCumprod(p.config.schedule));
  }

  /** An SD v1 checkpoint (single file or diffusers folder): see sd/checkpoint.ts. */
  static load(source: string, o: SDLoadOptions = {}): StableDiffusion {
    return new StableDiffusion(loadStableDiffusion(source, o));
  }

  /** A model with freshly initialised weights (for tests, benchmarks, and teachers trained here). */
  static create(config: StableDiffusionConfigInput = {}, o: { device?: Device; seed?: number } = {}): StableDiffusion {
    const c = parseStableDiffusionConfig(config);
    const unet = SDUNet.create(c.unet, { seed: o.seed, device: o.device });
    const text = CLIPTextEncoder.create(c.text, { seed: o.seed === undefined ? undefined : o.seed + 1, device: o.device });
    const vae = AutoencoderKL.create(c.vae, { seed: o.seed === undefined ? undefined : o.seed + 2, device: o.device });
    for (const m of [unet, text, vae]) m.eval().requiresGrad_(false);
    return new StableDiffusion({ config: c, unet, text, vae, tokenizer: CLIPTokenizer.load() });
  }

  get device(): Device { return this.unet.parameters()[0]!.device; }
  /** the VAE's downsampling (8 for SD v1) */
  get factor(): number { return vaeFactor(this.config.vae); }
  get latentChannels(): number { return this.config.vae.embed_dim; }

  /** Text embeddings [P, 77, width] (float32) of prompts. */
  encodePrompts(prompts: readonly string[], o: { dtype?: ExecutionDType; warn?: (msg: string) => void } = {}): Tensor {
    return noGrad(() => tidy(() => {
      const tokens = this.tokenizer.batch(prompts, { contextLength: this.config.text.context_length, warn: o.warn }).to(this.device);
      return this.text.forward(tokens, { dtype: o.dtype });
    }));
  }

  /** The empty prompt's embedding [1, 77, width] (cached per dtype; owned by the model). */
  uncond(dtype: ExecutionDType = 'float32'): Tensor {
    let u = this.uncondCache.get(dtype);
    if (!u) {
      u = keep(this.encodePrompts([''], { dtype }));
      this.uncondCache.set(dtype, u);
    }
    return u;
  }

  /** The UNet's eps as a sampler takes it. */
  epsModel(dtype?: ExecutionDType): EpsModel {
    return (x, t, context) => this.unet.forward(x, t, context, { dtype });
  }

  /** Images (float32, [-1, 1] nominally) of SD latents (scaled by scale_factor). */
  decode(latents: Tensor, o: { dtype?: ExecutionDType } = {}): Tensor {
    return noGrad(() => tidy(() => this.vae.decode(latents.div(this.config.vae.scale_factor), o)));
  }

  /** SD latents of images in [-1, 1]: scale_factor times the posterior's mean (or a sample of it, given the noise). */
  encode(images: Tensor, o: { dtype?: ExecutionDType; noise?: Tensor } = {}): Tensor {
    return noGrad(() => tidy(() => {
      const p = this.vae.encode(images, o);
      return (o.noise ? AutoencoderKL.sample(p, o.noise) : p.mean).mul(this.config.vae.scale_factor);
    }));
  }

  /** Latent size [h, w] for an image size. */
  latentSize(size: number | [number, number]): [number, number] {
    const [h, w] = typeof size === 'number' ? [size, size] : size;
    const f = this.factor;
    for (const s of [h, w]) if (!Number.isInteger(s) || s < f || s % f) throw new RangeError(`--size ${s}: the image size must be a positive multiple of ${f} (the VAE's downsampling)`);
    return [h / f, w / f];
  }

  /** Standard normal latents for prompts [first, first + n): prompt i's from its own seed, so its image does not depend on the batching. */
  noise(n: number, first: number, seed: number, h: number, w: number): Tensor {
    return tidy(() => cat(Array.from({ length: n }, (_, i) => randn([1, this.latentChannels, h, w], { generator: Generator.create('cpu', deriveSeed(seed, first + i)) }))).to(this.device));
  }

  /** Latents x0 for prompts: one row per prompt, from seeded noise (each prompt's noise independent of the batching). */
  sampleLatents(prompts: readonly string[], o: SDSampleOptions = {}): Tensor {
    const steps = o.steps ?? 25;
    const guidance = o.guidance ?? 7.5;
    if (!(guidance >= 1) || !Number.isFinite(guidance)) throw new RangeError(`--guidance ${guidance}: classifier-free guidance must be >= 1 (1 = none)`);
    const [h, w] = this.latentSize(o.size ?? this.config.unet.image_size * this.factor);
    const seed = o.seed ?? 0;
    const bs = o.batchSize ?? 4;
    const ac = this.alphasCumprod.toFloat64Array();
    const out: Tensor[] = [];
    for (let b = 0; b < prompts.length; b += bs) {
      const chunk = prompts.slice(b, b + bs);
      out.push(keep(noGrad(() => tidy(() => {
        const z = this.noise(chunk.length, (o.firstIndex ?? 0) + b, seed, h, w);
        const cond = { context: this.encodePrompts(chunk, o), uncond: this.uncond(o.dtype) };
        const model = this.epsModel(o.dtype);
        if ((o.sampler ?? 'ddim') === 'ddim') {
          const r = ddimSample(model, z, cond, { steps, guidance, alphasCumprod: ac });
          return r.x0;
        }
        const sigmaMax = Math.sqrt((1 - ac[ac.length - 1]!) / ac[ac.length - 1]!);
        return kSample(model, z.mul(Math.sqrt(1 + sigmaMax * sigmaMax) / sigmaMax), cond, { steps, guidance, alphasCumprod: ac, solver: o.sampler as 'euler' | 'heun' }).x0;
      }))));
    }
    const all = cat(out);
    dispose(out);
    return all;
  }

  /**
   * Images of a one-step generator from dmd-train (this model's UNet distilled): the x0 its UNet predicts
   * at the conditioning timestep t for latents z [N, 4, h, w] and text embeddings [N, 77, width], decoded
   * by the VAE; float32 in [-1, 1], on the model's device.
   */
  oneStep(z: Tensor, context: Tensor, t: number, o: { dtype?: ExecutionDType } = {}): Tensor {
    return noGrad(() => tidy(() => {
      const ts = full([z.shape[0]!], t, { dtype: 'int64', device: z.device });
      const x0 = x0FromEps(this.alphasCumprod.to({ device: z.device, dtype: 'float64' }), z, this.unet.forward(z, ts, context, { dtype: o.dtype }), ts).to('float32');
      return this.decode(x0, o).clamp(-1, 1);
    }));
  }

  /** Images [P, 3, H, W] in [-1, 1] for prompts (see sampleLatents), decoded by the VAE. */
  sample(prompts: readonly string[], o: SDSampleOptions = {}): Tensor {
    const latents = this.sampleLatents(prompts, o);
    try {
      return tidy(() => this.decode(latents, o).clamp(-1, 1));
    } finally {
      latents.dispose();
    }
  }

  /**
   * Writes an SD v1 single-file checkpoint (.safetensors) with these weights — or another UNet's (a
   * distilled generator) beside this model's VAE and text encoder — under SD v1's key names, so that
   * other SD tools load it.
   */
  saveSingleFile(file: string, o: { unet?: SDUNet; metadata?: Record<string, string> } = {}): void {
    tidy(() => {
      const all = new Map<string, Tensor>();
      const put = (prefix: string, m: { stateDict(): Map<string, Tensor> }) => {
        for (const [k, t] of m.stateDict()) all.set(prefix + k, t.to({ device: 'cpu', dtype: 'float32' }).contiguous());
      };
      put(UNET_PREFIX, o.unet ?? this.unet);
      put(VAE_PREFIX, this.vae);
      put(TEXT_PREFIX, this.text);
      writeSafetensors(file, all, { format: 'dmd-torch/sd', config: JSON.stringify(this.config), ...(o.metadata ?? {}) }, 'SD checkpoint');
    });
  }

  to(device: Device): this {
    for (const m of [this.unet, this.text, this.vae]) m.to({ device });
    return this;
  }

  dispose(): void {
    for (const m of [this.unet, this.text, this.vae]) m.dispose();
    this.alphasCumprod.dispose();
    dispose([...this.uncondCache.values()]);
    this.uncondCache.clear();
  }

  /** A short description for messages: the file and the architecture. */
  describe(): string {
    const c = this.config;
    const src = this.source ? `${path.basename(this.source.path)}${this.source.ema ? ' (EMA weights)' : ''}: ` : '';
    return `${src}SD v1 UNet ${(this.unet.parameterCount() / 1e6).toFixed(0)}M (model_channels ${c.unet.model_channels}), CLIP text ${(this.text.parameterCount() / 1e6).toFixed(0)}M (width ${c.text.width}), VAE ${(this.vae.parameterCount() / 1e6).toFixed(0)}M (f${this.factor})`;
  }
}
