// What DMD needs of a teacher, whatever its family (EDM in pixel space today; latent text-conditioned
// teachers next): a denoiser x0 = D(x_noisy, level, conditioning), the noise levels it was trained on
// and how to noise a sample at one of them, its bottleneck features for DMD2's GAN classifier, and a
// network that can be copied, frozen, trained and saved. Adding a teacher family is writing one
// adapter (dmd/models/) that implements these two interfaces; the rest of dmd/ never sees the network.
import type { Tensor } from '../tensor/tensor.js';
import type { Device, ExecutionDType } from '../tensor/device.js';
import type { Stateful } from '../nn/module.js';
import type { ImageSpec } from '../metrics/classifier.js';

/** What a sample is conditioned on: one-hot class labels [N, classes], text embeddings [N, tokens, width], or nothing. */
export type Conditioning = Tensor | null;

/** The first n samples of a batch with their conditioning (the batch itself when it holds no more). */
export function firstSamples(s: { x: Tensor; cond: Conditioning }, n: number): { x: Tensor; cond: Conditioning } {
  return s.x.shape[0]! <= n ? s : { x: s.x.narrow(0, 0, n), cond: s.cond?.narrow(0, 0, n) ?? null };
}

/** Noise levels (indices into the schedule's table) and standard normal noise for a batch; injectable so tests can feed reference values. */
export interface NoiseDraw {
  /** int64 [N], indices into the schedule's table of levels */
  tIndex: Tensor;
  /** standard normal noise shaped like the samples */
  noise: Tensor;
}

/** The clean-sample (x0) prediction of a score model from noisy samples at their levels; float32. */
export type ScoreFn = (noisy: Tensor, level: Tensor, cond: Conditioning) => Tensor;

/** One noised batch: what the fake score's denoising loss needs to compare its prediction against. */
export interface NoisedBatch {
  /** the clean samples */
  x: Tensor;
  noisy: Tensor;
  /** the level each sample was noised to, as the network takes it (EDM: sigma) */
  level: Tensor;
  /** the noise that was added */
  noise: Tensor;
}

/** The discretised forward process of a teacher family (EDM: 1000 Karras sigmas). */
export interface NoiseSchedule {
  /** number of levels in the table (tIndex runs over 0..numLevels-1) */
  readonly numLevels: number;
  /** the table of levels, ascending in noise (EDM: the sigmas) */
  readonly levels: Tensor;
  /** The forward process at table indices: noisy samples and the level the network is given. */
  addNoise(x: Tensor, tIndex: Tensor, noise: Tensor): { noisy: Tensor; level: Tensor };
  /** The level of clean samples for n images (the GAN classifier's input without diffusion noise). */
  cleanLevel(n: number): Tensor;
  /** The denoising objective of a prediction of b.x made from b.noisy (the fake score's training loss). */
  denoisingLoss(pred: Tensor, b: NoisedBatch): Tensor;
  dispose(): void;
}

export interface ScoreOptions {
  /** classifier-free guidance weight (1 = plain conditional model) */
  guidance?: number;
  dtype?: ExecutionDType;
}

/** The settings a schedule is built from (the dmd-train flags of the same names). */
export interface ScheduleSettings {
  numTrainTimesteps: number;
  sigmaMin: number;
  sigmaMax: number;
  rho: number;
}

/** The dmd-train settings a generator's conditioning level comes from. */
export interface GeneratorLevelSettings {
  sigmaC: number;
  /** default: the last timestep of the schedule */
  conditioningTimestep?: number | undefined;
}

/** A teacher network, or one of its trainable copies (fake score, generator), behind the DMD algorithm. */
export interface ScoreModel extends Stateful {
  /** the teacher family, e.g. 'edm' */
  readonly family: string;
  /** the shape of one sample, [C, H, W] */
  readonly sampleShape: number[];
  /** what the samples are as images (for evaluation classifiers, pairs and real data) */
  readonly imageSpec: ImageSpec;
  /** the number of classes of class-conditional models (0 otherwise) */
  readonly conditionDim: number;
  readonly device: Device;
  readonly training: boolean;
  /** whether the model has an unconditional branch for classifier-free guidance (class dropout, the empty prompt) */
  readonly guidable: boolean;
  /** A few words on the network for the start-up line (architecture, size of samples, classes). */
  describe(): string;
  /** A score function: x0 prediction with classifier-free guidance weight and execution precision. */
  score(o?: ScoreOptions): ScoreFn;
  /** Bottleneck features (DMD2's GAN classifier reads them) at the same inputs. */
  features(noisy: Tensor, level: Tensor, cond: Conditioning, dtype?: ExecutionDType): Tensor;
  featureShape(): { channels: number; resolution: number };
  /** The one-step generator: the network evaluated once at conditioning level `level` on standard normal z. */
  generate(z: Tensor, cond: Conditioning, level: number, dtype?: ExecutionDType): Tensor;
  /** The generator's conditioning level from the run's settings (EDM: sigma_c; SD: the conditioning timestep), checked against the model. */
  generatorLevel(s: GeneratorLevelSettings): number;
  /** How the level is named in messages and files, e.g. 'sigma_c 80' or 'conditioning timestep 999'. */
  describeLevel(level: number): string;
  /** Fixed inputs of the sample grids: seeded noise and conditioning (one row per class or prompt), with the grid's columns. */
  gridInputs(seed: number): { z: Tensor; cond: Conditioning; columns?: number };
  /** Images in [-1, 1] (nominally) of samples: the samples themselves in pixel space, the VAE's decoding of latents. */
  toImages(x: Tensor): Tensor;
  /** The noise schedule of this family for the given settings, on this model's device. */
  schedule(s: ScheduleSettings): NoiseSchedule;
  /** The conditioning of condition indices as regression pairs store them (class or prompt indices; null: unconditional). */
  conditionsOf(index: Tensor | null): Conditioning;
  /** Images of samples with autograd history through the decoding (LPIPS regression): the samples (EDM), the VAE's decoding of latents (SD). */
  differentiableImages(x: Tensor): Tensor;
  /** Samples of real images in [-1, 1] (the GAN's real data): the images (EDM), their latents by the VAE's encoder (SD). No gradients. */
  dataSamples(images: Tensor): Tensor;
  /** The conditioning of real images from their dataset: one-hot labels (EDM), the text embeddings of their captions (SD). */
  dataConditions(b: { labels: Tensor | null; captions: string[] | null }): Conditioning;
  /** Random conditioning for n samples, drawn with `randint` (so the caller's random stream is used). */
  randomConditions(n: number, randint: (low: number, high: number, n: number) => Tensor): Conditioning;
  /** An estimate of the memory one sample costs in a DMD iteration (activations kept for backward and in flight). */
  trainingBytesPerImage(dtype: ExecutionDType): number;
  /** Bytes of the frozen parts that come with the teacher besides its network (text encoder, VAE, prompt embeddings). */
  frozenBytes(): number;
  /** Writes the model as a one-step generator file of its family (with its conditioning level). */
  saveGenerator(file: string, level: number, metadata: Record<string, string>): void;
  /** A new model with a copy of the weights, on the same device, in the same mode. */
  clone(): ScoreModel;
  requiresGrad_(on: boolean): this;
  train(on?: boolean): this;
  eval(): this;
  parameterCount(): number;
  dispose(): void;
}
