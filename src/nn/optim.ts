// AdamW (Loshchilov & Hutter) as in torch.optim.AdamW, written over the foreach primitives: one step
// is ~9 native calls whatever the number of parameters. Parameters without a gradient are skipped.
import { Tensor } from '../tensor/tensor.js';
import { foreach, gradsOf } from '../tensor/foreach.js';
import { dispose, keep } from '../tensor/scope.js';

export interface AdamWOptions {
  lr: number;
  betas?: readonly [number, number];
  eps?: number;
  weightDecay?: number;
}

export interface AdamWState {
  step: number;
  expAvg: Tensor[];
  expAvgSq: Tensor[];
}

interface Group {
  params: Tensor[];
  m: Tensor[];
  v: Tensor[];
  scratch: Tensor[];
}

export class AdamW {
  readonly params: readonly Tensor[];
  lr: number;
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  stepCount = 0;
  private m: Tensor[] | null = null;
  private v: Tensor[] | null = null;
  private scratch: Tensor[] | null = null;
  private groups = new Map<string, Group>();

  constructor(params: readonly Tensor[], o: AdamWOptions) {
    if (!(o.lr >= 0)) throw new RangeError(`AdamW: lr must be >= 0, got ${o.lr}`);
    const [b1, b2] = o.betas ?? [0.9, 0.999];
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) throw new RangeError(`AdamW: betas must be in [0, 1), got [${b1}, ${b2}]`);
    this.params = params;
    this.lr = o.lr;
    this.betas = [b1, b2];
    this.eps = o.eps ?? 1e-8;
    this.weightDecay = o.weightDecay ?? 0.01;
  }

  private ensureState(): void {
    if (this.m) return;
    this.m = foreach.zerosLike(this.params).map(keep);
    this.v = foreach.zerosLike(this.params).map(keep);
    this.scratch = foreach.zerosLike(this.params).map(keep);
  }

  /** The parameters that have a gradient now, with their state (cached per pattern). */
  private active(): Group {
    const mask = foreach.hasGrad(this.params as Tensor[]);
    const key = mask.every(Boolean) ? 'all' : mask.map((b) => (b ? '1' : '0')).join('');
    let g = this.groups.get(key);
    if (!g) {
      const pick = <T>(xs: T[]) => xs.filter((_, i) => mask[i]);
      g = { params: pick([...this.params]), m: pick(this.m!), v: pick(this.v!), scratch: pick(this.scratch!) };
      this.groups.set(key, g);
    }
    return g;
  }

  /** One update with the current gradients; lr overrides the stored rate (schedules). */
  step(lr = this.lr): void {
    this.ensureState();
    const { params, m, v, scratch } = this.active();
    if (params.length === 0) return;
    this.stepCount += 1;
    const [b1, b2] = this.betas;
    const bc1 = 1 - b1 ** this.stepCount;
    const bc2 = 1 - b2 ** this.stepCount;
    const g = gradsOf(params);
    if (this.weightDecay !== 0) foreach.mul_(params, 1 - lr * this.weightDecay);
    foreach.lerp_(m, g, 1 - b1);
    foreach.mul_(v, b2);
    foreach.addcmul_(v, g, g, 1 - b2);
    foreach.copy_(scratch, v);
    foreach.sqrt_(scratch);
    foreach.mul_(scratch, 1 / Math.sqrt(bc2));
    foreach.add_(scratch, this.eps);
    foreach.addcdiv_(params, m, scratch, -lr / bc1);
  }

  zeroGrad(setToNone = true): void {
    foreach.zeroGrad(this.params, setToNone);
  }

  /** The optimizer state (tensors alias the live state; copy before mutating). */
  state(): AdamWState {
    this.ensureState();
    return { step: this.stepCount, expAvg: this.m!, expAvgSq: this.v! };
  }

  loadState(s: AdamWState): void {
    if (s.expAvg.length !== this.params.length || s.expAvgSq.length !== this.params.length)
      throw new RangeError(`AdamW.loadState: state has ${s.expAvg.length} tensors, optimizer has ${this.params.length} parameters`);
    this.ensureState();
    foreach.copy_(this.m!, s.expAvg);
    foreach.copy_(this.v!, s.expAvgSq);
    this.stepCount = s.step;
  }

  dispose(): void {
    dispose([this.m, this.v, this.scratch]);
    this.m = this.v = this.scratch = null;
    this.groups.clear();
  }
}
