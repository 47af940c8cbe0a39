// FID with the Inception-v3 TorchScript network that clean-fid and StyleGAN2-ADA use
// (inception-2015-12-05.pt, user-supplied): 2048-d features of uint8 RGB images.
import { existsSync } from 'node:fs';
import { N } from '../native.js';
import { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import type { Device } from '../tensor/device.js';

export class TorchScriptModule extends Module {
  constructor(file: string, device: Device = 'cpu') {
    if (!existsSync(file)) throw new Error(`${file}: TorchScript file not found`);
    super(N.scriptLoad(file, device));
  }

  /** The script module's parameters and buffers under their dotted names (new tensors aliasing the module's). */
  state(): Map<string, Tensor> {
    const s = N.scriptState(this.handle);
    return new Map(s.names.map((n, i) => [n, new Tensor(s.tensors[i]!)] as const));
  }

  /** Calls a method with positional and keyword arguments; returns the tensor result. */
  call(method: string, args: readonly (Tensor | number | boolean | string | null)[], kwargs: Record<string, Tensor | number | boolean | string | null> = {}): Tensor {
    const conv = (v: Tensor | number | boolean | string | null) => (v instanceof Tensor ? v.handle : v);
    const kw: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(kwargs)) kw[k] = conv(v);
    const r = N.scriptCall(this.handle, method, args.map(conv), kw);
    if (!N.isTensor(r)) throw new TypeError(`${method} did not return a tensor`);
    return new Tensor(r);
  }
}

/** Images in [-1, 1] (1 or 3 channels) to uint8 RGB, as FID pipelines expect. */
export function toUint8RGB(x: Tensor): Tensor {
  return tidy(() => {
    const rgb = x.shape[1] === 1 ? x.repeat([1, 3, 1, 1]) : x;
    return rgb.add(1).mul(127.5).round().clamp(0, 255).to('uint8');
  });
}

export class InceptionDetector {
  private readonly m: TorchScriptModule;
  constructor(file: string, device: Device = 'cpu') {
    this.m = new TorchScriptModule(file, device);
  }
  /** [N, 2048] features of images in [-1, 1]. */
  features(x: Tensor): Tensor {
    return tidy(() => this.m.call('forward', [toUint8RGB(x)], { return_features: true }).to('float64'));
  }
  dispose(): void {
    this.m.dispose();
  }
}
