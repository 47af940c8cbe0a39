// The one-step generator of DMD: a copy of the teacher evaluated once at a fixed conditioning level on
// standard normal noise, G(z, cond) (EDM: D(sigma_c z; sigma_c, labels)), with an optional EMA copy
// that is sampled and exported instead of G.
import path from 'node:path';
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import type { ExecutionDType } from '../tensor/device.js';
import { EMA } from '../nn/ema.js';
import type { Conditioning, ScoreModel } from './score-model.js';

export interface GeneratorSettings {
  /** the conditioning level (EDM: sigma_c) */
  level: number;
  dtype: ExecutionDType;
  /** EMA decay per generator update (0 = no EMA) */
  emaDecay: number;
  /** keep dropout active while training */
  dropout: boolean;
}

export class OneStepGenerator {
  readonly G: ScoreModel;
  /** the EMA of G (sampled and exported instead of G when present) */
  readonly ema: ScoreModel | null;
  private readonly averager: EMA<ScoreModel> | null;

  constructor(teacher: ScoreModel, private readonly s: GeneratorSettings) {
    this.G = teacher.clone().requiresGrad_(true).train(s.dropout);
    this.ema = s.emaDecay > 0 ? this.G.clone().eval().requiresGrad_(false) : null;
    this.averager = this.ema ? new EMA(this.ema) : null;
  }

  get level(): number { return this.s.level; }

  /** G(z, cond), with autograd history into G's weights. */
  forward(z: Tensor, cond: Conditioning): Tensor {
    return this.G.generate(z, cond, this.s.level, this.s.dtype);
  }

  /** The network that is sampled and exported: the EMA when enabled, else G. */
  get sampler(): ScoreModel { return this.ema ?? this.G; }

  /** Samples of the sampled network (no autograd history). */
  sample(z: Tensor, cond: Conditioning): Tensor {
    return noGrad(() => tidy(() => this.sampler.generate(z, cond, this.s.level, this.s.dtype)));
  }

  /** One EMA step after a generator update. */
  updateAverage(): void {
    this.averager?.update(this.G, this.s.emaDecay);
  }

  parameters(): Tensor[] { return this.G.parameters(); }

  /** Writes G (or its EMA: 'auto' = the sampled one) as a one-step generator file, with where it came from. */
  export(file: string, teacher: { path: string; sha256: string }, steps: number, which: 'auto' | 'G' | 'ema' = 'auto'): void {
    const net = which === 'G' || !this.ema ? this.G : this.ema;
    net.saveGenerator(file, this.s.level, { distilled_from: path.basename(teacher.path), teacher_sha256: teacher.sha256, dmd_steps: String(steps) });
  }

  dispose(): void {
    this.G.dispose();
    this.ema?.dispose();
  }
}
