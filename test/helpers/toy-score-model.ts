// A score model that is not an EDM network: a 2-D MLP denoiser written with plain tensor ops and
// autograd (no native module), EDM-preconditioned, for a mixture of Gaussians. It implements the DMD
// score-model interface, so the same DMDTrainer distils it; samples are [N, 2, 1, 1] ("2-channel 1x1 images").
import { Tensor, tidy, keep, noGrad, randn, cat, full, dispose, F, Generator, AdamW, type ExecutionDType, type Device } from '../../src/index.js';
import { EDMNoiseSchedule } from '../../src/dmd/models/edm.js';
import type { Conditioning, GeneratorLevelSettings, ScheduleSettings, ScoreModel } from '../../src/dmd/score-model.js';
import type { ImageSpec } from '../../src/metrics/classifier.js';

const SIGMA_DATA = 0.5;
const NAMES = ['w1', 'b1', 'w2', 'b2', 'w3', 'b3'] as const;

/** The mixture: 8 Gaussians of std 0.05 on a circle of radius 1 (what the toy teacher learns). */
export function mixtureSamples(n: number, gen: Generator): Tensor {
  return tidy(() => {
    const k = 8;
    const which = randn([n], { generator: gen }).mul(1000).abs().floor().remainder(k);
    const angle = which.mul((2 * Math.PI) / k);
    const centres = cat([angle.cos().unsqueeze(1), angle.sin().unsqueeze(1)], 1);
    return centres.add(randn([n, 2], { generator: gen }).mul(0.05)).reshape([n, 2, 1, 1]);
  });
}

export class ToyScoreModel implements ScoreModel {
  readonly family = 'toy-mlp';
  readonly sampleShape = [2, 1, 1];
  readonly imageSpec: ImageSpec = { img_channels: 2, img_resolution: 1, label_dim: 0 };
  readonly conditionDim = 0;
  readonly guidable = false;
  readonly device: Device = 'cpu';
  training = false;
  private readonly params: Map<string, Tensor>;

  constructor(params: Map<string, Tensor>) {
    this.params = params;
  }

  /** A freshly initialised MLP: 2 + 4 noise features -> hidden -> hidden -> 2. */
  static create(hidden: number, seed: number): ToyScoreModel {
    const g = Generator.create('cpu', seed);
    const p = new Map<string, Tensor>();
    const init = (shape: number[], fanIn: number) => keep(randn(shape, { generator: g }).mul(1 / Math.sqrt(fanIn)));
    p.set('w1', init([hidden, 6], 6));
    p.set('b1', keep(full([hidden], 0)));
    p.set('w2', init([hidden, hidden], hidden));
    p.set('b2', keep(full([hidden], 0)));
    p.set('w3', init([2, hidden], hidden).mul_(0.1));
    p.set('b3', keep(full([2], 0)));
    return new ToyScoreModel(p);
  }

  /** D(x; sigma) = c_skip x + c_out F(c_in x, c_noise) (EDM's preconditioning), x [N, 2, 1, 1]. */
  private denoise(input: Tensor, level: Tensor | number): Tensor {
    return tidy(() => {
      const x = input.to('float32');
      const n = x.shape[0]!;
      const sigma = typeof level === 'number' ? full([1], level) : level.to('float32');
      const s = sigma.numel === 1 ? sigma.reshape([1]).expand([n]) : sigma.reshape([n]);
      const s1 = s.reshape([n, 1]);
      const var_ = s1.square().add(SIGMA_DATA ** 2);
      const cSkip = var_.rdiv(SIGMA_DATA ** 2);
      const cOut = s1.mul(SIGMA_DATA).div(var_.sqrt());
      const cIn = var_.rsqrt();
      const cNoise = s1.log().div(4);
      const feats = cat([x.reshape([n, 2]).mul(cIn), cNoise, cNoise.mul(3).sin(), cNoise.mul(3).cos(), cNoise.square()], 1);
      const p = (k: (typeof NAMES)[number]) => this.params.get(k)!;
      const h1 = F.linear(feats, p('w1'), p('b1')).silu();
      const h2 = F.linear(h1, p('w2'), p('b2')).silu();
      const out = F.linear(h2, p('w3'), p('b3'));
      return x.reshape([n, 2]).mul(cSkip).add(out.mul(cOut)).reshape([n, 2, 1, 1]);
    });
  }

  describe(): string { return `2-D MLP (${this.parameterCount()} params)`; }
  /** x0 prediction; the level (sigma) may be a number, as EDM's samplers pass it */
  score(): (noisy: Tensor, level: Tensor | number, cond: Conditioning) => Tensor { return (noisy, level) => this.denoise(noisy, level); }
  features(): Tensor { throw new Error('the toy model has no GAN features'); }
  featureShape(): { channels: number; resolution: number } { throw new Error('the toy model has no GAN features'); }
  generate(z: Tensor, _cond: Conditioning, level: number, _dtype?: ExecutionDType): Tensor {
    return tidy(() => this.denoise(z.mul(level), full([z.shape[0]!], level)));
  }
  generatorLevel(s: GeneratorLevelSettings): number { return s.sigmaC; }
  describeLevel(level: number): string { return `sigma_c ${level}`; }
  gridInputs(seed: number): { z: Tensor; cond: Conditioning } {
    return { z: keep(randn([64, 2, 1, 1], { generator: Generator.create('cpu', seed) })), cond: null };
  }
  toImages(x: Tensor): Tensor { return x.clone(); }
  schedule(s: ScheduleSettings): EDMNoiseSchedule { return new EDMNoiseSchedule(s, 'cpu', SIGMA_DATA); }
  randomConditions(): Conditioning { return null; }
  conditionsOf(): Conditioning { return null; }
  dataSamples(x: Tensor): Tensor { return x; }
  dataConditions(): Conditioning { return null; }
  differentiableImages(x: Tensor): Tensor { return x; }
  trainingBytesPerImage(): number { return 4096; }
  frozenBytes(): number { return 0; }
  saveGenerator(): void { throw new Error('the toy model is not saved'); }
  clone(): ToyScoreModel {
    const copy = new ToyScoreModel(new Map([...this.params].map(([k, v]) => [k, keep(noGrad(() => v.detach().clone()))])));
    copy.training = this.training;
    return copy;
  }
  requiresGrad_(on: boolean): this {
    for (const p of this.params.values()) p.requiresGrad_(on);
    return this;
  }
  train(on = true): this { this.training = on; return this; }
  eval(): this { return this.train(false); }
  parameters(): Tensor[] { return NAMES.map((k) => this.params.get(k)!); }
  stateDict(): Map<string, Tensor> { return new Map(this.params); }
  loadStateDict(state: Map<string, Tensor>): void {
    noGrad(() => { for (const [k, v] of state) this.params.get(k)!.copy_(v); });
  }
  parameterCount(): number { return this.parameters().reduce((a, p) => a + p.numel, 0); }
  dispose(): void { dispose([...this.params.values()]); }
}

/** Trains a toy model as a teacher: EDM's denoising objective on mixture samples (ln sigma ~ N(-1.2, 1.2^2)), then frozen. */
export function trainToyTeacher(model: ToyScoreModel, steps: number): void {
  const gen = Generator.create('cpu', 1);
  model.requiresGrad_(true);
  const opt = new AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0 });
  const D = model.score();
  for (let i = 0; i < steps; i++) {
    tidy(() => {
      const x = mixtureSamples(256, gen);
      const sigma = randn([256], { generator: gen }).mul(1.2).sub(1.2).exp();
      const noisy = x.add(randn([256, 2, 1, 1], { generator: gen }).mul(sigma.reshape([-1, 1, 1, 1])));
      const w = sigma.square().add(0.25).div(sigma.mul(0.5).square()).reshape([-1, 1, 1, 1]);
      const loss = w.mul(D(noisy, sigma, null).sub(x).square()).mean();
      opt.zeroGrad();
      loss.backward();
      opt.step();
    });
  }
  opt.dispose();
  model.requiresGrad_(false).eval();
}

/** Energy distance 2E|X-Y| - E|X-X'| - E|Y-Y'| between two [N, 2, 1, 1] sample sets. */
export function energyDistance(a: Tensor, b: Tensor): number {
  return tidy(() => {
    const x = a.reshape([a.shape[0]!, 2]);
    const y = b.reshape([b.shape[0]!, 2]);
    const d = (p: Tensor, q: Tensor) => p.unsqueeze(1).sub(q.unsqueeze(0)).square().sum([2]).add(1e-12).sqrt().mean().item();
    return 2 * d(x, y) - d(x, x) - d(y, y);
  });
}
