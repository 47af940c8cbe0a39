// Stable Diffusion v1 teachers (latent, text-conditioned, eps-predicting UNets) as DMD score models,
// as DMD2's text-to-image code uses them: the level is the integer DDPM timestep, x_t = sqrt(a_t) x +
// sqrt(1 - a_t) eps (float32), the clean estimate x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t) in float64,
// classifier-free guidance with the empty prompt's embedding, the fake score trained on eps MSE, the
// one-step generator evaluated at the conditioning timestep (999) on Gaussian latents, and the GAN
// classifier on the middle block's output. Conditioning is the text encoder's last hidden state.
// loadSDTeacher makes one from an SD v1 checkpoint and a list of training prompts.
import type { Tensor } from '../../tensor/tensor.js';
import { tidy, keep, dispose } from '../../tensor/scope.js';
import { cat, full, tensor, zeros } from '../../tensor/create.js';
import { randn, Generator } from '../../tensor/random.js';
import type { Device, ExecutionDType } from '../../tensor/device.js';
import type { SDUNet } from '../../sd/unet.js';
import { guidedEps } from '../../sd/sampler.js';
import { StableDiffusion } from '../../sd/pipeline.js';
import { PromptEmbeddings } from '../../sd/prompt-embeddings.js';
import { generatorTimestep } from '../../sd/checkpoint.js';
import { x0FromEps, epsFromX0 } from '../../sd/schedule.js';
import { sdActivationBytes } from '../../sd/memory.js';
import { buildInfo } from '../../tensor/runtime.js';
import type { ImageSpec } from '../../metrics/classifier.js';
import type { Conditioning, GeneratorLevelSettings, NoisedBatch, NoiseSchedule, ScheduleSettings, ScoreFn, ScoreModel, ScoreOptions } from '../score-model.js';

/** The discretised DDPM forward process of SD: level = timestep t, x_t = sqrt(a_t) x + sqrt(1 - a_t) eps. */
export class SDNoiseSchedule implements NoiseSchedule {
  /** alphas_cumprod, float32 [T] (the table the teacher was trained with) */
  readonly levels: Tensor;
  private readonly a64: Tensor;

  constructor(alphasCumprod: Tensor) {
    this.levels = keep(alphasCumprod.to('float32').clone());
    this.a64 = keep(this.levels.to('float64'));
  }

  get numLevels(): number { return this.levels.shape[0]!; }

  /** diffusers' add_noise in float32 (DMD2's noising). */
  addNoise(x: Tensor, tIndex: Tensor, noise: Tensor): { noisy: Tensor; level: Tensor } {
    return tidy(() => {
      const a = this.levels.indexSelect(0, tIndex).reshape([-1, 1, 1, 1]);
      const noisy = a.sqrt().mul(x).add(a.rsub(1).sqrt().mul(noise));
      return { noisy, level: tIndex.clone() };
    });
  }

  cleanLevel(n: number): Tensor {
    return zeros([n], { dtype: 'int64', device: this.levels.device });
  }

  /** x0 from eps in float64 (DMD2's get_x0_from_noise). */
  x0FromEps(noisy: Tensor, eps: Tensor, t: Tensor): Tensor {
    return x0FromEps(this.a64, noisy, eps, t);
  }

  /** eps of an x0 prediction (the inverse of x0FromEps, in float64). */
  epsFromX0(noisy: Tensor, x0: Tensor, t: Tensor): Tensor {
    return epsFromX0(this.a64, noisy, x0, t);
  }

  /** DMD2's compute_loss_fake: the plain eps MSE (uniform weight), in float32. */
  denoisingLoss(pred: Tensor, b: NoisedBatch): Tensor {
    return tidy(() => this.epsFromX0(b.noisy, pred, b.level).to('float32').sub(b.noise.to('float32')).square().mean());
  }

  dispose(): void {
    this.levels.dispose();
    this.a64.dispose();
  }
}

export interface SDScoreModelParts {
  unet: SDUNet;
  /** alphas_cumprod of the teacher, float32 [1000] */
  alphasCumprod: Tensor;
  /** the empty prompt's embedding [1, L, D] (classifier-free guidance's unconditional model) */
  uncond: Tensor;
  /** the latent shape of one sample [C, h, w] */
  latentShape: number[];
  /** the image size the latents decode to (evaluation) */
  imageResolution: number;
  /** the decoded images' channels (3 for SD; 1 for a gray model) */
  imageChannels?: number;
  /** writes a one-step generator file of this family (the teacher's VAE and text encoder beside the UNet) */
  save?: (unet: SDUNet, file: string, metadata: Record<string, string>) => void;
  /** random prompts' embeddings for n samples (drawn with randint from the run's stream) */
  prompts?: (n: number, randint: (low: number, high: number, n: number) => Tensor) => Tensor;
  /** the embeddings of the training prompts at indices (regression pairs store prompt indices) */
  promptsAt?: (index: Tensor) => Tensor;
  /** the embeddings of the sample grids' prompts, one row per prompt */
  gridPrompts?: () => Tensor;
  /** images of latents (the teacher's VAE); without it grids show the latents' first three channels */
  decode?: (latents: Tensor) => Tensor;
  /** images of latents with autograd history through the VAE decoder (LPIPS regression) */
  decodeWithGrad?: (latents: Tensor) => Tensor;
  /** latents of real images (the VAE encoder's posterior mean, scaled), without gradients */
  encodeImages?: (images: Tensor) => Tensor;
  /** text embeddings of captions, without gradients */
  encodeTexts?: (texts: readonly string[]) => Tensor;
  /** activation checkpointing in the UNets trained from this one (clones) */
  checkpointing?: boolean;
  /** bytes of the frozen parts besides the UNet (text encoder, VAE, prompt embeddings) */
  frozenBytes?: number;
  /** frees what the parts share (text encoder, VAE, embeddings) and the owner's UNet: called by the model that owns them */
  release?: () => void;
}

export class SDScoreModel implements ScoreModel {
  readonly family = 'sd';
  readonly guidable = true;
  private schedule_: SDNoiseSchedule | null = null;

  /** `owner`: this model frees the shared parts (the teacher; its clones do not). */
  constructor(readonly parts: SDScoreModelParts, private readonly owner = true) {}

  get unet(): SDUNet { return this.parts.unet; }
  get sampleShape(): number[] { return this.parts.latentShape; }
  get imageSpec(): ImageSpec { return { img_channels: this.parts.imageChannels ?? 3, img_resolution: this.parts.imageResolution, label_dim: 0 }; }
  get conditionDim(): number { return 0; }
  get device(): Device { return this.unet.parameters()[0]!.device; }
  get training(): boolean { return this.unet.training; }

  describe(): string {
    const c = this.unet.config;
    return `SD v1 latent UNet, model_channels ${c.model_channels}, latents ${this.parts.latentShape.join('x')}, text context ${c.context_dim}`;
  }

  private sched(): SDNoiseSchedule {
    this.schedule_ ??= new SDNoiseSchedule(this.parts.alphasCumprod);
    return this.schedule_;
  }

  /** x0 (float64) with classifier-free guidance weight w on the empty prompt's embedding. */
  score(o: ScoreOptions = {}): ScoreFn {
    const w = o.guidance ?? 1;
    if (!(w >= 1) || !Number.isFinite(w)) throw new RangeError(`classifier-free guidance must be a finite number >= 1, got ${w}`);
    const s = this.sched();
    return (noisy, t, cond) =>
      tidy(() => {
        if (!cond) throw new TypeError('a text-conditioned score model needs the text embeddings');
        const eps = guidedEps((x, ts, c) => this.unet.forward(x, ts, c, { dtype: o.dtype }), noisy, t, { context: cond, uncond: this.parts.uncond }, w);
        return s.x0FromEps(noisy, eps, t);
      });
  }

  features(noisy: Tensor, level: Tensor, cond: Conditioning, dtype?: ExecutionDType): Tensor {
    if (!cond) throw new TypeError('a text-conditioned score model needs the text embeddings');
    return this.unet.middle(noisy, level, cond, { dtype });
  }

  featureShape(): { channels: number; resolution: number } {
    const m = this.unet.middleShape();
    return { channels: m.channels, resolution: this.parts.latentShape[1]! / m.downsample };
  }

  /** DMD2's SD generator: x0 of the UNet's eps at timestep `level` (999) on Gaussian latents z, in float32. */
  generate(z: Tensor, cond: Conditioning, level: number, dtype?: ExecutionDType): Tensor {
    if (!cond) throw new TypeError('a text-conditioned generator needs the text embeddings');
    return tidy(() => {
      const t = full([z.shape[0]!], level, { dtype: 'int64', device: z.device });
      return this.sched().x0FromEps(z, this.unet.forward(z, t, cond, { dtype }), t).to('float32');
    });
  }

  /** DMD2's conditioning_timestep: an integer timestep of the teacher's table. */
  generatorLevel(s: GeneratorLevelSettings): number {
    const T = this.parts.alphasCumprod.shape[0]!;
    const t = s.conditioningTimestep ?? T - 1;
    if (!Number.isInteger(t) || t < 0 || t >= T) throw new RangeError(`--conditioning-timestep ${t}: must be an integer timestep of the teacher's schedule, 0..${T - 1} (DMD2: ${T - 1})`);
    return t;
  }

  describeLevel(level: number): string { return `conditioning timestep ${level}`; }

  /** Four seeds (columns) for each grid prompt (rows), the same seeds on every row. */
  gridInputs(seed: number): { z: Tensor; cond: Conditioning; columns?: number } {
    if (!this.parts.gridPrompts) throw new TypeError('this SD score model has no prompts for sample grids');
    const columns = 4;
    return tidy(() => {
      const emb = this.parts.gridPrompts!();
      const rows = emb.shape[0]!;
      const z = randn([columns, ...this.sampleShape], { generator: Generator.create('cpu', seed) }).to(this.device);
      const rowOf = tensor(Array.from({ length: rows * columns }, (_, i) => Math.floor(i / columns)), { dtype: 'int64', device: emb.device });
      return { z: keep(z.repeat([rows, 1, 1, 1])), cond: keep(emb.indexSelect(0, rowOf)), columns };
    });
  }

  toImages(x: Tensor): Tensor {
    if (this.parts.decode) return this.parts.decode(x);
    return tidy(() => x.narrow(1, 0, Math.min(3, x.shape[1]!)).div(4).to('float32'));
  }

  schedule(_s: ScheduleSettings): SDNoiseSchedule {
    return new SDNoiseSchedule(this.parts.alphasCumprod);
  }

  conditionsOf(index: Tensor | null): Conditioning {
    if (!index || !this.parts.promptsAt) throw new TypeError('this SD score model has no prompts to look conditioning up in');
    return this.parts.promptsAt(index);
  }

  dataSamples(images: Tensor): Tensor {
    if (!this.parts.encodeImages) throw new TypeError('this SD score model has no VAE to encode images with');
    return this.parts.encodeImages(images);
  }

  dataConditions(b: { captions: string[] | null }): Conditioning {
    if (!b.captions) throw new TypeError('real images for a text-to-image model need captions');
    if (!this.parts.encodeTexts) throw new TypeError('this SD score model has no text encoder');
    return this.parts.encodeTexts(b.captions);
  }

  differentiableImages(x: Tensor): Tensor {
    if (!this.parts.decodeWithGrad) throw new TypeError('this SD score model has no VAE to decode latents with');
    return this.parts.decodeWithGrad(x);
  }

  randomConditions(n: number, randint: (low: number, high: number, n: number) => Tensor): Conditioning {
    if (!this.parts.prompts) throw new TypeError('this SD score model has no prompts to draw conditioning from');
    return this.parts.prompts(n, randint);
  }

  /** One backward's activations through the UNet (sd/memory.ts; fused attention on CUDA with libtorch >= 2). */
  trainingBytesPerImage(dtype: ExecutionDType): number {
    const [, h, w] = this.parts.latentShape as [number, number, number];
    const fused = this.device !== 'cpu' && buildInfo().sdpa;
    return sdActivationBytes(this.unet.config, h, w, { bytes: dtype === 'float32' ? 4 : 2, checkpointing: !!this.parts.checkpointing, attentionProbs: !fused });
  }

  frozenBytes(): number { return this.parts.frozenBytes ?? 0; }

  saveGenerator(file: string, level: number, metadata: Record<string, string>): void {
    if (!this.parts.save) throw new TypeError('this SD score model cannot be saved as a generator (no VAE/text encoder to write beside it)');
    this.parts.save(this.unet, file, { ...metadata, conditioning_timestep: String(level) });
  }

  /** A copy of the UNet's weights (with the same activation checkpointing); the shared parts stay the teacher's. */
  clone(): SDScoreModel {
    const unet = this.unet.clone();
    if (this.parts.checkpointing) unet.setCheckpointing(true);
    return new SDScoreModel({ ...this.parts, unet }, false);
  }

  requiresGrad_(on: boolean): this { this.unet.requiresGrad_(on); return this; }
  train(on = true): this { this.unet.train(on); return this; }
  eval(): this { this.unet.eval(); return this; }
  parameters(): Tensor[] { return this.unet.parameters(); }
  stateDict(): Map<string, Tensor> { return this.unet.stateDict(); }
  loadStateDict(state: Map<string, Tensor>): unknown { return this.unet.loadStateDict(state); }
  parameterCount(): number { return this.unet.parameterCount(); }

  dispose(): void {
    this.schedule_?.dispose();
    if (this.owner && this.parts.release) this.parts.release();
    else this.unet.dispose();
  }
}

export interface SDTeacherOptions {
  device: Device;
  /** the training prompts (conditioning is drawn uniformly from them) */
  prompts: readonly string[];
  /** image size in pixels (default: the model's) */
  resolution?: number | undefined;
  /** an LDM config (v1-inference.yaml) for the architecture */
  teacherConfig?: string | undefined;
  /** use the checkpoint's EMA weights (default: when it has them) */
  ema?: boolean | undefined;
  /** execution precision of the frozen text encoder and VAE */
  dtype?: ExecutionDType;
  /** activation checkpointing in the trained copies (generator, fake score) */
  checkpointing?: boolean;
  /** how many prompts appear in the sample grids, spread evenly over the file (default 8) */
  gridPrompts?: number;
  warn?: (msg: string) => void;
}

/** Thrown when an SD file cannot serve as a DMD teacher. */
export class SDTeacherError extends Error {
  readonly code = 'ERR_DMD_SETUP';
}

/**
 * An SD v1 checkpoint (single file or diffusers folder) as the DMD teacher: its UNet is the real score,
 * its text encoder embeds the training prompts (cached when small), its VAE decodes sample grids, and
 * the exported generator is written as an SD v1 single-file checkpoint with the teacher's VAE and text
 * encoder beside the distilled UNet.
 */
export function loadSDTeacher(file: string, o: SDTeacherOptions): SDScoreModel {
  if (generatorTimestep(file) !== null)
    throw new SDTeacherError(`--teacher ${file} is a one-step generator from dmd-train, not a teacher; distil from the SD checkpoint it came from`);
  const sd = StableDiffusion.load(file, { device: o.device, config: o.teacherConfig, ema: o.ema });
  let bank: PromptEmbeddings | null = null;
  let grid: Tensor | null = null;
  try {
    const f = sd.factor;
    if (o.resolution !== undefined && o.resolution % f)
      throw new SDTeacherError(`--resolution ${o.resolution}: the image size must be a positive multiple of ${f} (the VAE's downsampling)`);
    const [h, w] = sd.latentSize(o.resolution ?? sd.config.unet.image_size * f);
    bank = new PromptEmbeddings(sd, o.prompts, { dtype: o.dtype, warn: o.warn });
    const b = bank;
    const shown = Math.min(o.gridPrompts ?? 8, o.prompts.length);
    // evenly spaced over the file, so that a file sorted by subject shows them all (all of them when <= shown)
    const rows = Array.from({ length: shown }, (_, i) => o.prompts[Math.floor((i * o.prompts.length) / shown)]!);
    grid = keep(sd.encodePrompts(rows, { dtype: o.dtype }));
    const g = grid;
    const decodeChunk = 2; // the VAE decoder's activations at 512 px are about 1 GiB per image
    return new SDScoreModel({
      unet: sd.unet,
      alphasCumprod: sd.alphasCumprod,
      uncond: sd.uncond(o.dtype),
      latentShape: [sd.latentChannels, h, w],
      checkpointing: o.checkpointing ?? false,
      frozenBytes: 4 * (sd.text.parameterCount() + sd.vae.parameterCount()) + b.bytes,
      imageResolution: h * sd.factor,
      imageChannels: sd.config.vae.ddconfig.out_ch,
      prompts: (n, randint) => tidy(() => b.take(randint(0, b.size, n))),
      promptsAt: (index) => b.take(index),
      gridPrompts: () => g.clone(),
      decode: (latents) => tidy(() => {
        const parts: Tensor[] = [];
        for (let i = 0; i < latents.shape[0]!; i += decodeChunk) parts.push(sd.decode(latents.narrow(0, i, Math.min(decodeChunk, latents.shape[0]! - i)), { dtype: o.dtype }).to('cpu'));
        return cat(parts);
      }),
      encodeImages: (images) => sd.encode(images, { dtype: o.dtype }),
      encodeTexts: (texts) => sd.encodePrompts(texts, { dtype: o.dtype, warn: o.warn }),
      decodeWithGrad: (latents) => tidy(() => sd.vae.decode(latents.div(sd.config.vae.scale_factor), { dtype: o.dtype })),
      save: (unet, out, metadata) => sd.saveSingleFile(out, { unet, metadata: { ...metadata, role: 'generator', prompts: String(o.prompts.length) } }),
      release: () => {
        b.dispose();
        g.dispose();
        sd.dispose();
      },
    });
  } catch (e) {
    bank?.dispose();
    dispose([grid]);
    sd.dispose();
    throw e;
  }
}
