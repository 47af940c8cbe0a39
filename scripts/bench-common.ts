// Shared helpers of the benchmark scripts.
import { arange, F, type Device } from '../src/index.js';
export * from '../src/index.js';

/** Balanced one-hot labels [n, classes] on a device. */
export function oneHotLabels(n: number, classes: number, device: Device) {
  const idx = arange(0, n).remainder(classes);
  const oh = F.oneHot(idx, classes);
  idx.dispose();
  if (device === 'cpu') return oh;
  const moved = oh.to(device);
  oh.dispose();
  return moved;
}
