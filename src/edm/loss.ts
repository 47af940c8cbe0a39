// EDM's training loss (Karras et al. 2022, training/loss.py EDMLoss): ln sigma ~ N(P_mean, P_std^2),
// weight (sigma^2 + sigma_data^2) / (sigma sigma_data)^2, loss = weight * (D(y + n; sigma) - y)^2.
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { randn, type Generator } from '../tensor/random.js';
import type { EDMNetwork, ExecutionDType } from './network.js';

export interface EDMLossOptions {
  pMean?: number;
  pStd?: number;
  dtype?: ExecutionDType;
  generator?: Generator;
}

export interface EDMLossResult {
  /** EDM's training objective: the weighted loss summed over pixels, averaged over the batch */
  objective: Tensor;
  /** the weighted per-pixel loss averaged over everything (what EDM logs) */
  perPixel: Tensor;
}

export function edmLoss(net: EDMNetwork, images: Tensor, labels: Tensor | null, o: EDMLossOptions = {}): EDMLossResult {
  return tidy(() => {
    const n = images.shape[0]!;
    const sd = net.sigmaData;
    const device = images.device;
    const sigma = randn([n, 1, 1, 1], { device, generator: o.generator }).mul(o.pStd ?? 1.2).add(o.pMean ?? -1.2).exp();
    const weight = sigma.square().add(sd * sd).div(sigma.mul(sd).square());
    const noise = randn(images.shape, { device, generator: o.generator }).mul(sigma);
    const D = net.forward(images.add(noise), sigma.flatten(), { labels, dtype: o.dtype });
    const loss = weight.mul(D.sub(images).square());
    return { objective: loss.sum().div(n), perPixel: loss.mean() };
  });
}
