// Samplers of latent text-to-image teachers with classifier-free guidance (e = e_u + s (e_c - e_u), e_u
// from the empty prompt's embedding): deterministic DDIM (eta 0) as ldm's DDIMSampler runs it, and
// Euler/Heun on the process's sigmas through the EDM-form denoiser D(x; sigma) = x - sigma eps(x /
// sqrt(1 + sigma^2), t(sigma)) (k-diffusion's DiscreteEpsDDPMDenoiser), with the solvers of edm/sampler.ts.
import { Tensor } from '../tensor/tensor.js';
import { tidy, keep, dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { cat, full, stack, tensor } from '../tensor/create.js';
import { edmSample } from '../edm/sampler.js';
import type { Denoiser } from '../edm/guidance.js';
import { ddimTimesteps, sigmaOf } from './schedule.js';

/** eps = model(x_t, t, context): x [B, C, h, w], t int64 [B], context [B, L, D]. */
export type EpsModel = (x: Tensor, t: Tensor, context: Tensor) => Tensor;

export interface TextConditioning {
  /** the prompts' embeddings [B, L, D] */
  context: Tensor;
  /** the empty prompt's embedding [1 or B, L, D] (the unconditional model of classifier-free guidance) */
  uncond: Tensor;
}

/**
 * Classifier-free guided eps: one batched call on [uncond; cond] (as ldm's DDIMSampler), or the plain
 * conditional model when guidance is 1.
 */
export function guidedEps(model: EpsModel, x: Tensor, t: Tensor, cond: TextConditioning, guidance: number): Tensor {
  return tidy(() => {
    const n = x.shape[0]!;
    if (guidance === 1) return model(x, t, cond.context);
    const uncond = cond.uncond.shape[0] === n ? cond.uncond : cond.uncond.expand([n, ...cond.uncond.shape.slice(1)]);
    const both = model(cat([x, x]), cat([t, t]), cat([uncond, cond.context]));
    const [eu, ec] = both.chunk(2, 0);
    return eu!.add(ec!.sub(eu!).mul(guidance));
  });
}

export interface DDIMOptions {
  steps: number;
  guidance: number;
  /** alphas_cumprod values (float32 values, as a Float32Array or Float64Array of them) */
  alphasCumprod: ArrayLike<number>;
  /** keep x and the x0 prediction after every step */
  trajectory?: boolean;
}

export interface DDIMResult {
  x0: Tensor;
  timesteps: number[];
  /** a_t and a_prev of each step (float32 values) */
  stepAlphas: number[];
  stepAlphasPrev: number[];
  /** [steps, B, C, h, w] when asked for */
  trajectory?: Tensor;
  predX0?: Tensor;
}

/**
 * Deterministic DDIM from x_T: per step x0 = (x - sqrt(1 - a_t) e) / sqrt(a_t), x = sqrt(a_prev) x0 +
 * sqrt(1 - a_prev) e, with a_prev the next (lower) timestep's and alphas_cumprod[0] after the last;
 * coefficients in float32 as ldm computes them.
 */
export function ddimSample(model: EpsModel, xT: Tensor, cond: TextConditioning, o: DDIMOptions): DDIMResult {
  if (!(o.guidance >= 1) || !Number.isFinite(o.guidance)) throw new RangeError(`classifier-free guidance must be a finite number >= 1, got ${o.guidance}`);
  const ts = ddimTimesteps(o.steps, o.alphasCumprod.length);
  const f = Math.fround;
  const at = ts.map((t) => f(o.alphasCumprod[t]!));
  const prev = ts.map((_, i) => f(i + 1 < ts.length ? o.alphasCumprod[ts[i + 1]!]! : o.alphasCumprod[0]!));
  const xs: Tensor[] = [];
  const x0s: Tensor[] = [];
  let x = keep(xT.clone());
  noGrad(() => {
    for (let i = 0; i < ts.length; i++) {
      const next = tidy(() => {
        const n = x.shape[0]!;
        const t = full([n], ts[i]!, { dtype: 'int64', device: x.device });
        const e = guidedEps(model, x, t, cond, o.guidance);
        const x0 = x.sub(e.mul(f(Math.sqrt(f(1 - at[i]!))))).div(f(Math.sqrt(at[i]!)));
        const xn = x0.mul(f(Math.sqrt(prev[i]!))).add(e.mul(f(Math.sqrt(f(1 - prev[i]!)))));
        if (o.trajectory) x0s.push(keep(x0));
        return xn;
      });
      x.dispose();
      x = keep(next);
      if (o.trajectory) xs.push(keep(x.clone()));
    }
  });
  const r: DDIMResult = { x0: x, timesteps: ts, stepAlphas: at, stepAlphasPrev: prev };
  if (o.trajectory) {
    r.trajectory = keep(stack(xs));
    r.predX0 = keep(stack(x0s));
    dispose([xs, x0s]);
  }
  return r;
}

/** The discrete timestep (fractional, log-sigma interpolated) of a noise level, as k-diffusion's sigma_to_t. */
export function timestepOfSigma(sigma: number, sigmas: Float64Array): number {
  const ls = Math.log(sigma);
  if (ls <= Math.log(sigmas[0]!)) return 0;
  const last = sigmas.length - 1;
  if (ls >= Math.log(sigmas[last]!)) return last;
  let lo = 0;
  let hi = last;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (Math.log(sigmas[mid]!) <= ls) lo = mid;
    else hi = mid;
  }
  const a = Math.log(sigmas[lo]!);
  const b = Math.log(sigmas[hi]!);
  return lo + (ls - a) / (b - a);
}

/** The EDM-form denoiser of an eps model with guidance: D(x; sigma) = x - sigma eps(x / sqrt(1 + sigma^2), t(sigma)). */
export function sdDenoiser(model: (x: Tensor, t: Tensor, context: Tensor) => Tensor, cond: TextConditioning, guidance: number, alphasCumprod: ArrayLike<number>): Denoiser {
  const sigmas = Float64Array.from(Array.from(alphasCumprod, (a) => sigmaOf(a)));
  return (x, sigma) =>
    tidy(() => {
      const s = typeof sigma === 'number' ? sigma : sigma.flatten().select(0, 0).item();
      const t = tensor(new Array(x.shape[0]!).fill(timestepOfSigma(s, sigmas)), { dtype: 'float32', device: x.device });
      const xin = x.to('float32').div(Math.sqrt(1 + s * s));
      const e = guidedEps(model, xin, t, cond, guidance);
      return x.to('float32').sub(e.mul(s));
    });
}

export interface KSamplerOptions {
  steps: number;
  guidance: number;
  alphasCumprod: ArrayLike<number>;
  solver: 'euler' | 'heun';
}

/**
 * Euler or Heun over the sigmas of DDIM's timesteps (then 0), from x_T = sigma_max z: the same
 * trajectory family as DDIM, with a higher-order option.
 */
export function kSample(model: EpsModel, z: Tensor, cond: TextConditioning, o: KSamplerOptions): { x0: Tensor; nfe: number } {
  if (!(o.guidance >= 1) || !Number.isFinite(o.guidance)) throw new RangeError(`classifier-free guidance must be a finite number >= 1, got ${o.guidance}`);
  const ts = ddimTimesteps(o.steps, o.alphasCumprod.length);
  const sigmas = [...ts.map((t) => sigmaOf(o.alphasCumprod[t]!)), 0];
  const r = edmSample(sdDenoiser(model, cond, o.guidance, o.alphasCumprod), z, null, sigmas, { solver: o.solver });
  return { x0: r.x.to('float32'), nfe: r.nfe };
}

