// Stable Diffusion v1's DDPM forward process: betas = linspace(sqrt(0.00085), sqrt(0.012), 1000)^2
// ("scaled_linear"), alphas_cumprod = cumprod(1 - betas) computed in float64 and stored as float32 (as
// ldm's make_beta_schedule and register_schedule do), x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps, integer
// timesteps 0..999; DDIM's timestep subsequence (ldm's make_ddim_timesteps, 'uniform'); and the EDM
// sigmas of the same process (sigma_t = sqrt((1 - a_t) / a_t)) for Euler/Heun samplers.
import { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { fromArray } from '../tensor/create.js';
import type { SDSchedule } from './config.js';

/** alphas_cumprod as float64 numbers (ldm's computation). */
export function alphasCumprodValues(s: Pick<SDSchedule, 'linear_start' | 'linear_end' | 'timesteps'> = { linear_start: 0.00085, linear_end: 0.012, timesteps: 1000 }): Float64Array {
  const n = s.timesteps;
  const a = Math.sqrt(s.linear_start);
  const b = Math.sqrt(s.linear_end);
  const out = new Float64Array(n);
  let prod = 1;
  const step = (b - a) / (n - 1);
  for (let i = 0; i < n; i++) {
    // torch.linspace in float64: from the start for the first half, from the end for the second
    const root = i < n / 2 ? a + step * i : b - step * (n - 1 - i);
    prod *= 1 - root * root;
    out[i] = prod;
  }
  return out;
}

/** alphas_cumprod [timesteps] as a float32 tensor (rounded from float64, as ldm stores it). */
export function alphasCumprod(s?: Pick<SDSchedule, 'linear_start' | 'linear_end' | 'timesteps'>): Tensor {
  return fromArray(Float32Array.from(alphasCumprodValues(s)), [s?.timesteps ?? 1000]);
}

/**
 * DDIM's timesteps for `steps` steps ('uniform', ldm's make_ddim_timesteps): every multiple of
 * c = T // steps below T, plus 1 (while below T), in descending (execution) order. When steps does not divide T
 * there can be more than `steps`.
 */
export function ddimTimesteps(steps: number, T = 1000): number[] {
  if (!Number.isInteger(steps) || steps < 1 || steps > T) throw new RangeError(`DDIM steps must be an integer in 1..${T}, got ${steps}`);
  const c = Math.floor(T / steps);
  const out: number[] = [];
  // the + 1 can reach T (e.g. 3 steps: 999 + 1), past the schedule: ldm fails there; that step is dropped
  for (let t = 0; t < T; t += c) if (t + 1 < T) out.push(t + 1);
  return out.reverse();
}

/** The EDM noise level of timestep t: sqrt((1 - a_t) / a_t). */
export function sigmaOf(alphaCumprod: number): number {
  return Math.sqrt((1 - alphaCumprod) / alphaCumprod);
}

/** x0 from eps at integer timesteps t (int64 [N]) in float64, with `a64` the alphas_cumprod table as float64 (DMD2's get_x0_from_noise). */
export function x0FromEps(a64: Tensor, noisy: Tensor, eps: Tensor, t: Tensor): Tensor {
  return tidy(() => {
    const a = a64.indexSelect(0, t).reshape([-1, 1, 1, 1]);
    return noisy.to('float64').sub(a.rsub(1).sqrt().mul(eps.to('float64'))).div(a.sqrt());
  });
}

/** eps of an x0 prediction at timesteps t (the inverse of x0FromEps, in float64). */
export function epsFromX0(a64: Tensor, noisy: Tensor, x0: Tensor, t: Tensor): Tensor {
  return tidy(() => {
    const a = a64.indexSelect(0, t).reshape([-1, 1, 1, 1]);
    return noisy.to('float64').sub(a.sqrt().mul(x0.to('float64'))).div(a.rsub(1).sqrt());
  });
}
