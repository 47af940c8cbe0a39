// The network as a denoiser D(x; sigma, labels), with classifier-free guidance (Ho & Salimans 2022)
// for networks trained with label dropout: D = D_u + w (D_c - D_u), D_u with zero labels. The one
// implementation behind the samplers and DMD's real score.
import { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { cat, full } from '../tensor/create.js';
import type { EDMNetwork, ExecutionDType } from './network.js';

/** D(x; sigma, labels) -> float32 denoised images; sigma is a number, [1] or [N]. */
export type Denoiser = (x: Tensor, sigma: Tensor | number, labels: Tensor | null) => Tensor;

export interface DenoiserOptions {
  /** Classifier-free guidance weight w: 1 = the plain conditional network, 0 = unconditional. */
  guidance?: number;
  dtype?: ExecutionDType;
}

export function denoiser(net: EDMNetwork, o: DenoiserOptions = {}): Denoiser {
  const w = o.guidance ?? 1;
  if (!Number.isFinite(w) || w < 0) throw new RangeError(`classifier-free guidance weight must be a finite number >= 0, got ${w}`);
  if (w !== 1 && net.labelDim === 0) throw new RangeError('classifier-free guidance needs a class-conditional network (label_dim > 0)');
  return (x, sigma, labels) =>
    tidy(() => {
      const s = sigma instanceof Tensor ? sigma : full([1], sigma, { device: x.device });
      if (w === 1 || !labels) return net.forward(x, s, { labels, dtype: o.dtype });
      const both = net.forward(cat([x, x]), s.numel === 1 ? s : cat([s, s]), { labels: cat([labels, labels.zerosLike()]), dtype: o.dtype });
      const [cond, uncond] = both.chunk(2, 0);
      return uncond!.add(cond!.sub(uncond!).mul(w));
    });
}
