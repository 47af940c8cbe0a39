// Module: the typed view of a native network (EDM UNets, LPIPS, GAN heads). Parameters live in C++;
// this class hands out tensors that alias them.
import { N, type ModuleHandle, type NamedHandles } from '../native.js';
import { type DType, dtypeCode, isFloating } from '../tensor/dtype.js';
import { type Device, checkDevice } from '../tensor/device.js';
import { Tensor } from '../tensor/tensor.js';
import { keep } from '../tensor/scope.js';

function toMap(n: NamedHandles, kept: boolean): Map<string, Tensor> {
  const m = new Map<string, Tensor>();
  n.names.forEach((name, i) => {
    const t = new Tensor(n.tensors[i]!);
    m.set(name, kept ? keep(t) : t);
  });
  return m;
}

/**
 * What a training run keeps and restores of a network: its parameters and its state dict. Native
 * modules have it; so can a network written in TypeScript from plain tensors (e.g. a test's MLP).
 */
export interface Stateful {
  parameters(): Tensor[];
  stateDict(): Map<string, Tensor>;
  loadStateDict(state: Map<string, Tensor>): unknown;
}

export interface LoadStateOptions {
  /** Every key must match (default true). */
  strict?: boolean;
}

export class Module implements Stateful {
  readonly handle: ModuleHandle;
  private cachedParams: Tensor[] | null = null;

  constructor(handle: ModuleHandle) {
    this.handle = handle;
  }

  get kind(): string { return N.moduleKind(this.handle); }

  /**
   * The parameters in registration order, as tensors aliasing the module's own (they survive tidy()
   * scopes and stay valid across to()). The same array is returned on every call.
   */
  parameters(): Tensor[] {
    if (!this.cachedParams) this.cachedParams = [...toMap(N.moduleNamedParameters(this.handle), true).values()];
    return this.cachedParams;
  }
  /** Parameter names in registration order (same order as parameters()). */
  parameterNames(): string[] { return N.moduleNamedParameters(this.handle).names; }
  /** Named parameters (new tensors, tracked by the enclosing tidy() scope). */
  namedParameters(): Map<string, Tensor> { return toMap(N.moduleNamedParameters(this.handle), false); }
  namedBuffers(): Map<string, Tensor> { return toMap(N.moduleNamedBuffers(this.handle), false); }
  /** Parameters and buffers by state-dict key (new tensors aliasing the module's). */
  stateDict(): Map<string, Tensor> {
    const m = this.namedParameters();
    for (const [k, v] of this.namedBuffers()) m.set(k, v);
    return m;
  }
  stateNames(): string[] { return N.moduleStateNames(this.handle); }
  /** Copies values in (converted to the module's dtype/device). Shape mismatches and, when strict, missing or extra keys are errors naming the key. */
  loadStateDict(state: Map<string, Tensor> | Record<string, Tensor>, o: LoadStateOptions = {}): { missing: string[]; unexpected: string[] } {
    const entries = state instanceof Map ? [...state.entries()] : Object.entries(state);
    return N.moduleLoadState(this.handle, entries.map((e) => e[0]), entries.map((e) => e[1].handle), o.strict ?? true);
  }
  /** Copies all parameters and buffers from an identically built module. */
  copyFrom(other: Module): this {
    N.moduleCopy(this.handle, other.handle);
    return this;
  }

  train(on = true): this { N.moduleTrain(this.handle, on); return this; }
  eval(): this { return this.train(false); }
  get training(): boolean { return N.moduleIsTraining(this.handle); }

  /** Moves/casts floating parameters and buffers in place (existing parameter tensors follow). */
  to(target: { device?: Device; dtype?: DType } | Device | DType): this {
    const o = typeof target === 'string' ? (target === 'cpu' || target.startsWith('cuda') ? { device: target as Device } : { dtype: target as DType }) : target;
    if (o.dtype && !isFloating(o.dtype)) throw new TypeError(`module.to: dtype must be floating point, got ${o.dtype}`);
    N.moduleTo(this.handle, o.device ? checkDevice(o.device) : null, o.dtype ? dtypeCode(o.dtype) : null);
    return this;
  }
  requiresGrad_(on = true): this { N.moduleSetRequiresGrad(this.handle, on); return this; }
  parameterCount(): number { return N.moduleParameterCount(this.handle); }

  /** Frees the native module (its parameter tensors handed out earlier are freed too). */
  dispose(): void {
    if (this.cachedParams) for (const p of this.cachedParams) p.dispose();
    this.cachedParams = null;
    N.moduleDispose(this.handle);
  }
  [Symbol.dispose](): void { this.dispose(); }
}
