// Neural-network functionals (torch.nn.functional), each one native call.
import { N } from '../native.js';
import { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { arange } from '../tensor/create.js';
import type { Device } from '../tensor/device.js';

type Pair = number | readonly [number, number];

export function linear(x: Tensor, w: Tensor, b?: Tensor | null): Tensor { return new Tensor(N.linear(x.handle, w.handle, b?.handle)); }

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}
export function conv2d(x: Tensor, w: Tensor, b?: Tensor | null, o: Conv2dOptions = {}): Tensor {
  return new Tensor(N.conv2d(x.handle, w.handle, b?.handle, o.stride ?? 1, o.padding ?? 0, o.dilation ?? 1, o.groups ?? 1));
}
export function convTranspose2d(x: Tensor, w: Tensor, b?: Tensor | null, o: Conv2dOptions & { outputPadding?: Pair } = {}): Tensor {
  return new Tensor(N.convTranspose2d(x.handle, w.handle, b?.handle, o.stride ?? 1, o.padding ?? 0, o.outputPadding ?? 0, o.groups ?? 1, o.dilation ?? 1));
}
export function groupNorm(x: Tensor, groups: number, w?: Tensor | null, b?: Tensor | null, eps = 1e-5): Tensor {
  return new Tensor(N.groupNorm(x.handle, groups, w?.handle, b?.handle, eps));
}
export function layerNorm(x: Tensor, shape: readonly number[], w?: Tensor | null, b?: Tensor | null, eps = 1e-5): Tensor {
  return new Tensor(N.layerNorm(x.handle, shape, w?.handle, b?.handle, eps));
}

export interface InterpolateOptions {
  size?: readonly number[];
  scaleFactor?: number;
  mode?: 'nearest' | 'nearest-exact' | 'bilinear' | 'bicubic' | 'area';
  alignCorners?: boolean;
  antialias?: boolean;
}
export function interpolate(x: Tensor, o: InterpolateOptions): Tensor {
  if (!o.size && o.scaleFactor === undefined) throw new TypeError('interpolate: give size or scaleFactor');
  return new Tensor(N.interpolate(x.handle, o.size, o.scaleFactor, o.mode ?? 'nearest', o.alignCorners, o.antialias ?? false));
}
/** pad(x, [left, right, top, bottom, ...]) as torch.nn.functional.pad. */
export function pad(x: Tensor, pads: readonly number[], mode: 'constant' | 'reflect' | 'replicate' | 'circular' = 'constant', value = 0): Tensor {
  return new Tensor(N.pad(x.handle, pads, mode, value));
}
export function softmax(x: Tensor, dim: number): Tensor { return x.softmax(dim); }
export function logSoftmax(x: Tensor, dim: number): Tensor { return x.logSoftmax(dim); }
export function dropout(x: Tensor, p: number, training = true): Tensor { return new Tensor(N.dropout(x.handle, p, training)); }
export function avgPool2d(x: Tensor, kernel: Pair, stride?: Pair, padding: Pair = 0): Tensor {
  return new Tensor(N.avgPool2d(x.handle, kernel, stride, padding));
}
export function maxPool2d(x: Tensor, kernel: Pair, stride?: Pair, padding: Pair = 0): Tensor {
  return new Tensor(N.maxPool2d(x.handle, kernel, stride, padding));
}
export function adaptiveAvgPool2d(x: Tensor, size: Pair): Tensor { return new Tensor(N.adaptiveAvgPool2d(x.handle, size)); }
/** One-hot float32 rows from int64 class indices. */
export function oneHot(indices: Tensor, numClasses: number): Tensor {
  const h = N.oneHot(indices.handle, numClasses);
  const f = N.to(h, 6, null, false);
  N.dispose(h);
  return new Tensor(f);
}
/** One-hot rows [n, numClasses] cycling through the classes (0, 1, ..., numClasses-1, 0, ...), on a device; null when numClasses is 0 (unconditional). */
export function cycledOneHot(n: number, numClasses: number, device: Device = 'cpu'): Tensor | null {
  if (!numClasses) return null;
  return tidy(() => {
    const oh = oneHot(arange(0, n).remainder(numClasses), numClasses);
    return device === 'cpu' ? oh : oh.to(device);
  });
}
export function crossEntropy(logits: Tensor, target: Tensor, labelSmoothing = 0): Tensor {
  return new Tensor(N.crossEntropy(logits.handle, target.handle, labelSmoothing));
}
export function mseLoss(a: Tensor, b: Tensor): Tensor {
  const d = a.sub(b);
  const s = d.square();
  d.dispose();
  const m = s.mean();
  s.dispose();
  return m;
}
