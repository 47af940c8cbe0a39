// The critic of DMD (DMD2's "guidance model"): the frozen real score (the teacher, with optional
// classifier-free guidance), the fake score trained online on generator samples, DMD2's GAN classifier
// head on the fake score's bottleneck (or on the frozen teacher's: then a run without distribution
// matching has no fake score), and the noise schedule; the losses of losses.ts bound to them,
// each drawing its noise levels and noise from the run's random stream in a fixed order.
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { deriveSeed } from '../tensor/random.js';
import type { ExecutionDType } from '../tensor/device.js';
import type { Stateful } from '../nn/module.js';
import { GanHead } from './head.js';
import { distributionMatchingLoss, fakeScoreLoss, ganHeadLoss, type DistributionMatchingResult } from './losses.js';
import type { Conditioning, NoiseDraw, NoiseSchedule, ScoreFn, ScoreModel } from './score-model.js';
import type { RankRandom } from './rng.js';
import { trainsFakeScore } from './config.js';

export interface CriticSettings {
  realGuidance: number;
  dtype: ExecutionDType;
  /** distribution matching draws table indices from [minStep, maxStep] */
  minStepPercent: number;
  maxStepPercent: number;
  /** distribution matching's weight: 0 with a head on the teacher leaves no use for a fake score */
  lambdaDm: number;
  gan: boolean;
  /** what the GAN head reads: the fake score's bottleneck (DMD2) or the frozen teacher's */
  ganFeatures: 'fake' | 'teacher';
  diffusionGan: boolean;
  diffusionGanMaxTimestep: number;
  seed: number;
  /** keep the fake score's dropout active */
  dropout: boolean;
}

export class Critic {
  /** the fake score: starts as a copy of the teacher and tracks the generator's distribution (null: not needed) */
  readonly fake: ScoreModel | null;
  readonly head: GanHead | null;
  readonly realScore: ScoreFn;
  readonly fakeScore: ScoreFn | null;
  /** the network whose bottleneck the GAN head reads */
  private readonly ganNet: ScoreModel;
  private readonly minStep: number;
  private readonly maxStep: number;

  /** `real`: the teacher (frozen here; the critic owns neither it nor the schedule). */
  constructor(readonly real: ScoreModel, readonly schedule: NoiseSchedule, private readonly rng: RankRandom, private readonly s: CriticSettings) {
    this.fake = trainsFakeScore(s) ? real.clone().requiresGrad_(true).train(s.dropout) : null;
    this.ganNet = s.ganFeatures === 'teacher' || !this.fake ? real : this.fake;
    if (s.gan) {
      const b = this.ganNet.featureShape();
      this.head = new GanHead(b.channels, b.resolution, deriveSeed(s.seed, 7));
      if (real.device !== 'cpu') this.head.to({ device: real.device });
      this.head.train();
    } else {
      this.head = null;
    }
    this.realScore = real.score({ guidance: s.realGuidance, dtype: s.dtype });
    this.fakeScore = this.fake?.score({ dtype: s.dtype }) ?? null;
    const T = schedule.numLevels;
    this.minStep = Math.floor(s.minStepPercent * T);
    this.maxStep = Math.floor(s.maxStepPercent * T);
  }

  /** The trainable parts: the fake score, then the GAN head. */
  parameters(): Tensor[] {
    return [...(this.fake?.parameters() ?? []), ...(this.head?.parameters() ?? [])];
  }

  /** What a checkpoint holds of the critic, by part name. */
  stateParts(): [string, Stateful][] {
    const parts: [string, Stateful][] = [];
    if (this.fake) parts.push(['fake', this.fake]);
    if (this.head) parts.push(['head', this.head]);
    return parts;
  }

  private draw(low: number, high: number, shape: number[]): NoiseDraw {
    const tIndex = this.rng.randint(low, high, shape[0]!);
    return { tIndex, noise: this.rng.randn(shape) };
  }

  /** DMD's distribution-matching loss of generator output x, at levels uniform in [minStep, maxStep]. */
  distributionMatching(x: Tensor, cond: Conditioning): DistributionMatchingResult {
    const draw = this.draw(this.minStep, Math.min(this.maxStep + 1, this.schedule.numLevels), x.shape);
    return distributionMatchingLoss(x, cond, this.realScore, this.fakeScore!, this.schedule, draw);
  }

  /** The fake score's denoising loss on detached samples, at levels uniform over the whole table (null: no fake score). */
  fakeScoreLoss(x: Tensor, cond: Conditioning): Tensor | null {
    return this.fakeScore ? fakeScoreLoss(x, cond, this.fakeScore, this.schedule, this.draw(0, this.schedule.numLevels, x.shape)).loss : null;
  }

  /** GAN realism logits [N] of samples through the fake score's (or the teacher's) bottleneck (noised first for the diffusion GAN). */
  ganLogits(x: Tensor, cond: Conditioning): Tensor {
    return tidy(() => {
      const n = x.shape[0]!;
      let input = x;
      let level: Tensor;
      if (this.s.diffusionGan) {
        const d = this.draw(0, Math.min(this.s.diffusionGanMaxTimestep, this.schedule.numLevels), x.shape);
        ({ noisy: input, level } = this.schedule.addNoise(x, d.tIndex, d.noise));
      } else {
        level = this.schedule.cleanLevel(n);
      }
      return this.head!.logits(this.ganNet.features(input, level, cond, this.s.dtype));
    });
  }

  /** The head's loss on real and generated samples, with the mean realism it gives each. */
  ganHeadLoss(real: { x: Tensor; cond: Conditioning }, generated: { x: Tensor; cond: Conditioning }): { loss: Tensor; dReal: Tensor; dFake: Tensor } {
    return tidy(() => {
      const lr = this.ganLogits(real.x, real.cond);
      const lf = this.ganLogits(generated.x, generated.cond);
      return { loss: ganHeadLoss(lr, lf), dReal: lr.sigmoid().mean(), dFake: lf.sigmoid().mean() };
    });
  }

  /**
   * Runs fn with the critic's parameters frozen (as DMD2 does in its generator turn): the generator's
   * GAN term back-propagates through the fake score to the samples without computing the gradients of
   * the fake score's and the head's weights, which that turn would throw away.
   */
  frozen<T>(fn: () => T): T {
    this.fake?.requiresGrad_(false);
    this.head?.requiresGrad_(false);
    try {
      return fn();
    } finally {
      this.fake?.requiresGrad_(true);
      this.head?.requiresGrad_(true);
    }
  }

  dispose(): void {
    this.fake?.dispose();
    this.head?.dispose();
  }
}
