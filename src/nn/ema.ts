// Exponential moving average of a network's parameters (EDM's EMA with half-life in images).
import type { Tensor } from '../tensor/tensor.js';
import { foreach } from '../tensor/foreach.js';

/** EDM: beta = 0.5 ** (batch / halflife_nimg), halflife ramped to nimg * rampupRatio early in training. */
export function edmEmaBeta(batchSize: number, halflifeKimg: number, nimg: number, rampupRatio: number | null = 0.05): number {
  let halflife = halflifeKimg * 1000;
  if (rampupRatio !== null) halflife = Math.min(halflife, nimg * rampupRatio);
  return 0.5 ** (batchSize / Math.max(halflife, 1e-8));
}

interface WithParameters { parameters(): Tensor[] }

export class EMA<M extends WithParameters> {
  constructor(readonly shadow: M) {}

  /**
   * shadow = beta * shadow + (1 - beta) * model, over the parameters only: buffers are not averaged
   * and not copied (the networks distilled here have constant buffers, e.g. resampling filters).
   */
  update(model: M, beta: number): void {
    if (!(beta >= 0 && beta <= 1)) throw new RangeError(`EMA beta must be in [0, 1], got ${beta}`);
    foreach.lerp_(this.shadow.parameters(), model.parameters(), 1 - beta);
  }
}
