// Stable Diffusion v1 teachers (latent, text-conditioned, eps-predicting UNets) as DMD score models,
// as DMD2's text-to-image code uses them: the level is the integer DDPM timestep, x_t = sqrt(a_t) x +
// sqrt(1 - a_t) eps (float32), the clean estimate x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t) in float64,
// classifier-free guidance with the empty prompt's embedding, the fake score trained on eps MSE, the
// one-step generator evaluated at the conditioning timestep (999) on Gaussian latents, and the GAN
// classifier on the middle block's output. Conditioning is the text encoder's last hidden state.
import type { Tensor } from '../../tensor/tensor.js';
import { tidy, keep } from '../../tensor/scope.js';
import { full, zeros } from '../../tensor/create.js';
import type { Device, ExecutionDType } from '../../tensor/device.js';
import type { SDUNet } from '../../sd/unet.js';
import { guidedEps } from '../../sd/sampler.js';
import type { ImageSpec } from '../../metrics/classifier.js';
import type { Conditioning, NoisedBatch, NoiseSchedule, ScheduleSettings, ScoreFn, ScoreModel, ScoreOptions } from '../score-model.js';

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
    return tidy(() => {
      const a = this.a64.indexSelect(0, t).reshape([-1, 1, 1, 1]);
      return noisy.to('float64').sub(a.rsub(1).sqrt().mul(eps.to('float64'))).div(a.sqrt());
    });
  }

  /** eps of an x0 prediction (the inverse of x0FromEps, in float64). */
  epsFromX0(noisy: Tensor, x0: Tensor, t: Tensor): Tensor {
    return tidy(() => {
      const a = this.a64.indexSelect(0, t).reshape([-1, 1, 1, 1]);
      return noisy.to('float64').sub(a.sqrt().mul(x0.to('float64'))).div(a.rsub(1).sqrt());
    });
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
  /** writes a one-step generator file of this family (the teacher's VAE and text encoder beside the UNet) */
  save?: (unet: SDUNet, file: string, metadata: Record<string, string>) => void;
  /** random prompts' embeddings for n samples (drawn with randint from the run's stream) */
  prompts?: (n: number, randint: (low: number, high: number, n: number) => Tensor) => Tensor;
}

export class SDScoreModel implements ScoreModel {
  readonly family = 'sd';
  private schedule_: SDNoiseSchedule | null = null;

  constructor(readonly parts: SDScoreModelParts) {}

  get unet(): SDUNet { return this.parts.unet; }
  get sampleShape(): number[] { return this.parts.latentShape; }
  get imageSpec(): ImageSpec { return { img_channels: 3, img_resolution: this.parts.imageResolution, label_dim: 0 }; }
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

  schedule(_s: ScheduleSettings): SDNoiseSchedule {
    return new SDNoiseSchedule(this.parts.alphasCumprod);
  }

  randomConditions(n: number, randint: (low: number, high: number, n: number) => Tensor): Conditioning {
    if (!this.parts.prompts) throw new TypeError('this SD score model has no prompts to draw conditioning from');
    return this.parts.prompts(n, randint);
  }

  trainingBytesPerImage(passes: number, dtype: ExecutionDType): number {
    const c = this.unet.config;
    const [, h, w] = this.parts.latentShape as [number, number, number];
    let elements = 0;
    for (let l = 0; l < c.channel_mult.length; l++) elements += c.model_channels * c.channel_mult[l]! * (h >> l) * (w >> l) * (3 * c.num_res_blocks + 4);
    return elements * passes * (dtype === 'float32' ? 4 : 2);
  }

  saveGenerator(file: string, level: number, metadata: Record<string, string>): void {
    if (!this.parts.save) throw new TypeError('this SD score model cannot be saved as a generator (no VAE/text encoder to write beside it)');
    this.parts.save(this.unet, file, { ...metadata, conditioning_timestep: String(level) });
  }

  clone(): SDScoreModel {
    return new SDScoreModel({ ...this.parts, unet: this.unet.clone() });
  }

  requiresGrad_(on: boolean): this { this.unet.requiresGrad_(on); return this; }
  train(on = true): this { this.unet.train(on); return this; }
  eval(): this { this.unet.eval(); return this; }
  parameters(): Tensor[] { return this.unet.parameters(); }
  stateDict(): Map<string, Tensor> { return this.unet.stateDict(); }
  loadStateDict(state: Map<string, Tensor>): unknown { return this.unet.loadStateDict(state); }
  parameterCount(): number { return this.unet.parameterCount(); }

  dispose(): void {
    this.unet.dispose();
    this.schedule_?.dispose();
  }
}
