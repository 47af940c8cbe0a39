// Exponential moving average of a module's parameters (EDM's EMA with half-life in images).
import { Module } from './module.js';
import { foreach } from '../tensor/foreach.js';

/** EDM: beta = 0.5 ** (batch / halflife_nimg), halflife ramped to nimg * rampupRatio early in training. */
export function edmEmaBeta(batchSize: number, halflifeKimg: number, nimg: number, rampupRatio: number | null = 0.05): number {
  let halflife = halflifeKimg * 1000;
  if (rampupRatio !== null) halflife = Math.min(halflife, nimg * rampupRatio);
  return 0.5 ** (batchSize / Math.max(halflife, 1e-8));
}

export class EMA<M extends Module> {
  constructor(readonly shadow: M) {}

  /** shadow = beta * shadow + (1 - beta) * model, over parameters (buffers are copied). */
  update(model: M, beta: number): void {
    if (!(beta >= 0 && beta <= 1)) throw new RangeError(`EMA beta must be in [0, 1], got ${beta}`);
    foreach.lerp_(this.shadow.parameters(), model.parameters(), 1 - beta);
  }
}
