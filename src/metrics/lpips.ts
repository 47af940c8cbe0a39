// LPIPS (v0.1, VGG16 backbone) as DMD's regression loss: native network, weights from one
// safetensors file (torchvision `features.*` + the lpips package's `lin{k}.model.1.weight`).
import { N } from '../native.js';
import { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { dtypeCode } from '../tensor/dtype.js';
import type { Device } from '../tensor/device.js';
import { readSafetensors } from '../io/safetensors.js';
import { dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';

export class LPIPSError extends Error {
  readonly code = 'ERR_LPIPS';
}

export interface LPIPSOptions {
  /** bilinear resize to resize x resize before the network (DMD used 224); 0 = none */
  resize?: number;
  dtype?: 'float32' | 'bfloat16' | 'float16';
}

export class LPIPS extends Module {
  private constructor() {
    super(N.lpipsCreate());
  }

  /** An LPIPS network with zero weights (fill with loadStateDict). */
  static empty(): LPIPS {
    return new LPIPS();
  }

  /** Loads the weights file written by scripts/convert-lpips.py; frozen, eval mode. */
  static load(file: string, o: { device?: Device } = {}): LPIPS {
    const m = new LPIPS();
    let r;
    try {
      r = readSafetensors(file);
    } catch (e) {
      m.dispose();
      throw new LPIPSError(`LPIPS weights: ${e instanceof Error ? e.message : String(e)} (make the file with scripts/convert-lpips.py)`);
    }
    try {
      const missing = m.stateNames().filter((k) => !r.tensors.has(k));
      if (missing.length) throw new LPIPSError(`${file}: not an LPIPS VGG weights file (missing ${missing.slice(0, 3).join(', ')}); make it with scripts/convert-lpips.py`);
      const state = new Map([...r.tensors].filter(([k]) => !k.startsWith('classifier.')));
      noGrad(() => m.loadStateDict(state));
    } catch (e) {
      m.dispose();
      throw e;
    } finally {
      dispose(r.tensors);
    }
    m.eval().requiresGrad_(false);
    if (o.device && o.device !== 'cpu') m.to({ device: o.device });
    return m;
  }

  /** Per-image distances [N] between x0 and x1 (images in [-1, 1], [N, 3, H, W]; 1-channel inputs are repeated). Differentiable. */
  distance(x0: Tensor, x1: Tensor, o: LPIPSOptions = {}): Tensor {
    const rgb = (x: Tensor) => (x.shape[1] === 1 ? x.repeat([1, 3, 1, 1]) : x);
    const a = rgb(x0);
    const b = rgb(x1);
    try {
      return new Tensor(N.lpipsForward(this.handle, a.handle, b.handle, o.resize ?? 0, o.dtype ? dtypeCode(o.dtype) : null));
    } finally {
      if (a !== x0) a.dispose();
      if (b !== x1) b.dispose();
    }
  }
}
