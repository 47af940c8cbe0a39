// Noise levels: EDM's Karras discretisation (eq. 5) for sampling, and the 1000-level table DMD
// indexes during distillation (DMD2's get_sigmas_karras, flipped so index 0 = sigma_min).
import { linspace } from '../tensor/create.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Device } from '../tensor/device.js';

export interface KarrasOptions {
  sigmaMin?: number;
  sigmaMax?: number;
  rho?: number;
}

/**
 * The N sampler time steps t_0 > ... > t_{N-1} followed by t_N = 0, in float64 (JS numbers):
 * t_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho.
 */
export function karrasSteps(numSteps: number, o: KarrasOptions = {}): number[] {
  if (!Number.isInteger(numSteps) || numSteps < 1) throw new RangeError(`num_steps must be a positive integer, got ${numSteps}`);
  const smin = o.sigmaMin ?? 0.002;
  const smax = o.sigmaMax ?? 80;
  const rho = o.rho ?? 7;
  if (!(smin > 0 && smax > smin)) throw new RangeError(`need 0 < sigma_min < sigma_max, got ${smin}, ${smax}`);
  const a = smax ** (1 / rho);
  const b = smin ** (1 / rho);
  const steps: number[] = [];
  for (let i = 0; i < numSteps; i++) steps.push((a + (numSteps === 1 ? 0 : i / (numSteps - 1)) * (b - a)) ** rho);
  steps.push(0);
  return steps;
}

/**
 * DMD's discretised noise levels: n Karras sigmas in float32, ascending (index 0 = sigma_min),
 * computed exactly as DMD2 does (torch.linspace ramp in float32, then flipped).
 */
export function karrasTable(n = 1000, o: KarrasOptions & { device?: Device } = {}): Tensor {
  const smin = o.sigmaMin ?? 0.002;
  const smax = o.sigmaMax ?? 80;
  const rho = o.rho ?? 7;
  const minInv = smin ** (1 / rho);
  const maxInv = smax ** (1 / rho);
  const ramp = linspace(0, 1, n, { dtype: 'float32', device: o.device });
  const a = ramp.mul(minInv - maxInv);
  const b = a.add(maxInv);
  const c = b.pow(rho);
  const d = c.flip(0);
  for (const t of [ramp, a, b, c]) t.dispose();
  return d;
}
