// EDM samplers (Karras et al. 2022): the deterministic Heun sampler (Algorithm 2), its stochastic
// variant (Algorithm 2 with S_churn/S_min/S_max/S_noise) and Euler, with float64 state, plus
// classifier-free guidance for teachers trained with label dropout.
import { Tensor } from '../tensor/tensor.js';
import { tidy, keep, unkeep } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { randn, type Generator } from '../tensor/random.js';
import { cat, zeros, full } from '../tensor/create.js';
import type { EDMNetwork, ExecutionDType } from './network.js';
import { karrasSteps } from './sigmas.js';

/** D(x; sigma, labels) -> float32 denoised images. */
export type Denoiser = (x: Tensor, sigma: number, labels: Tensor | null) => Tensor;

export interface DenoiserOptions {
  /** Classifier-free guidance weight w: D = D_u + w (D_c - D_u); 1 = plain conditional. */
  guidance?: number;
  dtype?: ExecutionDType;
}

/** The network as a denoiser, with classifier-free guidance when guidance != 1 (needs label_dim > 0). */
export function denoiser(net: EDMNetwork, o: DenoiserOptions = {}): Denoiser {
  const w = o.guidance ?? 1;
  if (w !== 1 && net.labelDim === 0) throw new RangeError('classifier-free guidance needs a class-conditional teacher (label_dim > 0)');
  return (x, sigma, labels) =>
    tidy(() => {
      const s = full([1], sigma, { device: x.device });
      if (w === 1 || !labels) return net.forward(x, s, { labels, dtype: o.dtype });
      const both = net.forward(cat([x, x]), s, { labels: cat([labels, zeros(labels.shape, { device: labels.device })]), dtype: o.dtype });
      const [cond, uncond] = both.chunk(2, 0);
      return uncond!.add(cond!.sub(uncond!).mul(w));
    });
}

export interface SamplerOptions {
  numSteps?: number;
  sigmaMin?: number;
  sigmaMax?: number;
  rho?: number;
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
  /** The time steps used, t_0 .. t_N = 0. */
  tSteps: number[];
  /** Network evaluations per sample. */
  nfe: number;
}

/**
 * Samples from noise z (unit variance; scaled by t_0 inside, as EDM): the EDM ODE/SDE solver with
 * float64 state. Runs without gradients.
 */
export function edmSample(D: Denoiser, z: Tensor, labels: Tensor | null, o: SamplerOptions & { netSigmaMin?: number; netSigmaMax?: number | null } = {}): SampleResult {
  const n = o.numSteps ?? 18;
  const sigmaMin = Math.max(o.sigmaMin ?? 0.002, o.netSigmaMin ?? 0);
  const sigmaMax = Math.min(o.sigmaMax ?? 80, o.netSigmaMax ?? Infinity);
  const t = karrasSteps(n, { sigmaMin, sigmaMax, rho: o.rho ?? 7 });
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
          if (heun && i < n - 1) {
            const denoised2 = D(out, tNext, labels).to('float64');
            const dPrime = out.sub(denoised2).div(tNext);
            out = xHat.add(dCur.mul(0.5).add(dPrime.mul(0.5)).mul(tNext - tHat));
          }
          return out;
        }),
      );
      prev.dispose();
      nfe += heun && i < n - 1 ? 2 : 1;
      o.onStep?.(i, n);
    }
    return xNext;
  });
  return { x: unkeep(x), tSteps: t, nfe };
}

/** Convenience: EDM's sampler for an EDMNetwork (respects its sigma_min/sigma_max). */
export function sampleEDM(net: EDMNetwork, z: Tensor, labels: Tensor | null, o: SamplerOptions & DenoiserOptions = {}): SampleResult {
  return edmSample(denoiser(net, o), z, labels, { ...o, netSigmaMin: net.config.sigma_min, netSigmaMax: net.config.sigma_max });
}
