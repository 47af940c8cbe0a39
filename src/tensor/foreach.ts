// Multi-tensor (foreach) primitives: one native call per list. Optimizers and EMA are written on these.
import { N, type HandleList, type TensorHandle } from '../native.js';
import { type DType, dtypeCode } from './dtype.js';
import { Tensor } from './tensor.js';

/** A list of tensors, or the gradients of a list of parameters (gradsOf(params)). */
export type TensorList = readonly Tensor[] | GradsOf;
export class GradsOf {
  constructor(readonly params: readonly Tensor[]) {}
}
/** Refers to the .grad of each parameter without creating handles for them. */
export function gradsOf(params: readonly Tensor[]): GradsOf { return new GradsOf(params); }

function hl(l: TensorList): HandleList {
  if (l instanceof GradsOf) return { gradsOf: l.params.map((t) => t.handle) };
  return l.map((t) => t.handle);
}
const wrapAll = (hs: TensorHandle[]) => hs.map((h) => new Tensor(h));

export const foreach = {
  /** Which parameters have a gradient. */
  hasGrad(params: readonly Tensor[]): boolean[] { return N.foreachHasGrad(hl(params)); },
  zeroGrad(params: readonly Tensor[], setToNone = true): void { N.foreachZeroGrad(hl(params), setToNone); },
  zero_(ts: TensorList): void { N.foreachZero(hl(ts)); },
  mul_(ts: TensorList, other: number | TensorList): void { N.foreachMul(hl(ts), typeof other === 'number' ? other : hl(other)); },
  /** ts += alpha * other (or ts += other for a number). */
  add_(ts: TensorList, other: number | TensorList, alpha = 1): void {
    N.foreachAdd(hl(ts), typeof other === 'number' ? other : hl(other), alpha);
  },
  /** ts += weight * (ends - ts) */
  lerp_(ts: TensorList, ends: TensorList, weight: number): void { N.foreachLerp(hl(ts), hl(ends), weight); },
  /** ts += value * a * b */
  addcmul_(ts: TensorList, a: TensorList, b: TensorList, value: number): void { N.foreachAddcmul(hl(ts), hl(a), hl(b), value); },
  /** ts += value * a / b */
  addcdiv_(ts: TensorList, a: TensorList, b: TensorList, value: number): void { N.foreachAddcdiv(hl(ts), hl(a), hl(b), value); },
  sqrt_(ts: TensorList): void { N.foreachSqrt(hl(ts)); },
  copy_(dst: TensorList, src: TensorList): void { N.foreachCopy(hl(dst), hl(src)); },
  zerosLike(ts: TensorList, dtype?: DType): Tensor[] { return wrapAll(N.foreachZerosLike(hl(ts), dtype ? dtypeCode(dtype) : null)); },
  clone(ts: TensorList): Tensor[] { return wrapAll(N.foreachClone(hl(ts))); },
  allFinite(ts: TensorList): boolean { return N.foreachAllFinite(hl(ts)); },
  /**
   * Scales the gradients so their global norm is at most maxNorm (no-op for maxNorm <= 0 or Infinity);
   * returns the norm before clipping as a 0-dim tensor (no host sync).
   */
  clipGradNorm_(params: readonly Tensor[], maxNorm: number, normType = 2): Tensor {
    return new Tensor(N.clipGradNorm(hl(params), maxNorm, normType));
  },
};
