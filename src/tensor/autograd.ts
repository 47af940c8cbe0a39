// Gradient mode and torch.autograd.grad.
import { N } from '../native.js';
import { Tensor } from './tensor.js';

function withGradMode<T>(on: boolean, fn: () => T): T {
  const prev = N.gradEnabled();
  N.setGradEnabled(on);
  try {
    const r = fn();
    if (r instanceof Promise) throw new TypeError('noGrad()/enableGrad() take a synchronous function');
    return r;
  } finally {
    N.setGradEnabled(prev);
  }
}

/** Runs fn with gradient recording off (torch.no_grad). */
export function noGrad<T>(fn: () => T): T { return withGradMode(false, fn); }
/** Runs fn with gradient recording on (torch.enable_grad). */
export function enableGrad<T>(fn: () => T): T { return withGradMode(true, fn); }
export function isGradEnabled(): boolean { return N.gradEnabled(); }

export interface GradOptions {
  gradOutputs?: readonly Tensor[];
  retainGraph?: boolean;
  createGraph?: boolean;
  allowUnused?: boolean;
}

/** torch.autograd.grad: gradients of outputs w.r.t. inputs (null for unused inputs when allowUnused). */
function grad(outputs: Tensor | readonly Tensor[], inputs: Tensor | readonly Tensor[], o: GradOptions = {}): (Tensor | null)[] {
  const outs = outputs instanceof Tensor ? [outputs] : outputs;
  const ins = inputs instanceof Tensor ? [inputs] : inputs;
  const r = N.autogradGrad(
    outs.map((t) => t.handle),
    ins.map((t) => t.handle),
    o.gradOutputs ? o.gradOutputs.map((t) => t.handle) : null,
    o.retainGraph ?? null,
    o.createGraph ?? false,
    o.allowUnused ?? false,
  );
  return r.map((h) => (h ? new Tensor(h) : null));
}

export const autograd = { grad };
