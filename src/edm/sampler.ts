// EDM samplers (Karras et al. 2022): the deterministic Heun sampler (Algorithm 2), its stochastic
// variant (Algorithm 2 with S_churn/S_min/S_max/S_noise) and Euler, with float64 state. The solver
// takes the noise levels as given (as k-diffusion's samplers do); the schedule comes from sigmas.ts.
import { Tensor } from '../tensor/tensor.js';
import { tidy, keep, unkeep } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { randn, type Generator } from '../tensor/random.js';
import type { EDMNetwork } from './network.js';
import { karrasSteps, type KarrasOptions } from './sigmas.js';
import { denoiser, type Denoiser, type DenoiserOptions } from './guidance.js';

export interface SolverOptions {
  /** 'heun' (EDM's 2nd order; NFE = 2N - 1) or 'euler' (NFE = N). */
  solver?: 'heun' | 'euler';
  /** Stochasticity (EDM Algorithm 2); all default to the deterministic sampler. */
  sChurn?: number;
  sMin?: number;
  sMax?: number;
  sNoise?: number;
  /** Generator for the churn noise. */
  generator?: Generator;
  /** Called after every step with (step index, number of steps). */
  onStep?: (i: number, n: number) => void;
}

export interface SampleResult {
  /** Final images, float64. */
  x: Tensor;
  /** The noise levels used, t_0 .. t_N = 0. */
  tSteps: number[];
  /** Network evaluations per sample. */
  nfe: number;
}

/**
 * Solves EDM's probability-flow ODE (or SDE with churn) from noise z (unit variance; scaled by
 * sigmas[0] inside, as EDM) along the given noise levels, which must decrease and end with 0 (as
 * karrasSteps returns them). float64 state; runs without gradients.
 */
export function edmSample(D: Denoiser, z: Tensor, labels: Tensor | null, sigmas: readonly number[] | Tensor, o: SolverOptions = {}): SampleResult {
  const t = sigmas instanceof Tensor ? sigmas.toArray() : [...sigmas];
  if (t.length < 2 || t[t.length - 1] !== 0 || t.some((v, i) => !Number.isFinite(v) || (i > 0 && v >= t[i - 1]!)))
    throw new RangeError(`sigmas must be finite, strictly decreasing and end with 0 (got ${t.length} levels)`);
  const n = t.length - 1;
  const heun = (o.solver ?? 'heun') === 'heun';
  const sChurn = o.sChurn ?? 0;
  const sMin = o.sMin ?? 0;
  const sMax = o.sMax ?? Infinity;
  const sNoise = o.sNoise ?? 1;
  let nfe = 0;
  const x = noGrad(() => {
    let xNext = keep(tidy(() => z.to('float64').mul(t[0]!)));
    for (let i = 0; i < n; i++) {
      const tCur = t[i]!;
      const tNext = t[i + 1]!;
      const prev = xNext;
      xNext = keep(
        tidy(() => {
          const gamma = sChurn > 0 && tCur >= sMin && tCur <= sMax ? Math.min(sChurn / n, Math.SQRT2 - 1) : 0;
          const tHat = tCur + gamma * tCur;
          const xHat = gamma > 0 ? prev.add(randn(prev.shape, { dtype: 'float64', device: prev.device, generator: o.generator }).mul(Math.sqrt(tHat ** 2 - tCur ** 2) * sNoise)) : prev;
          const denoised = D(xHat, tHat, labels).to('float64');
          const dCur = xHat.sub(denoised).div(tHat);
          let out = xHat.add(dCur.mul(tNext - tHat));
          if (heun && tNext > 0) {
            const denoised2 = D(out, tNext, labels).to('float64');
            const dPrime = out.sub(denoised2).div(tNext);
            out = xHat.add(dCur.mul(0.5).add(dPrime.mul(0.5)).mul(tNext - tHat));
          }
          return out;
        }),
      );
      prev.dispose();
      nfe += heun && tNext > 0 ? 2 : 1;
      o.onStep?.(i, n);
    }
    return xNext;
  });
  return { x: unkeep(x), tSteps: t, nfe };
}

export interface SamplerOptions extends SolverOptions, KarrasOptions {
  numSteps?: number;
}

/**
 * Convenience: EDM's sampler for an EDMNetwork — Karras levels (numSteps, sigma range clamped to the
 * network's sigma_min/sigma_max), with classifier-free guidance when `guidance` is set.
 */
export function sampleEDM(net: EDMNetwork, z: Tensor, labels: Tensor | null, o: SamplerOptions & DenoiserOptions = {}): SampleResult {
  const sigmas = karrasSteps(o.numSteps ?? 18, {
    sigmaMin: Math.max(o.sigmaMin ?? 0.002, net.config.sigma_min),
    sigmaMax: Math.min(o.sigmaMax ?? 80, net.config.sigma_max ?? Infinity),
    rho: o.rho,
  });
  return edmSample(denoiser(net, o), z, labels, sigmas, o);
}
