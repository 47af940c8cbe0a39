// The one-step generator of DMD: G(z) = D_G(sigma_c z; sigma_c, labels), an EDM network evaluated once
// at the conditioning noise level sigma_c (80 = EDM's sigma_max).
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { full } from '../tensor/create.js';
import type { EDMNetwork, ExecutionDType } from '../edm/network.js';
import { readSafetensorsHeader } from '../io/safetensors.js';

export const DEFAULT_SIGMA_C = 80;

export function generate(G: EDMNetwork, z: Tensor, labels: Tensor | null, sigmaC = DEFAULT_SIGMA_C, dtype?: ExecutionDType): Tensor {
  return tidy(() => G.forward(z.mul(sigmaC), full([z.shape[0]!], sigmaC, { device: z.device }), { labels, dtype }));
}

/** The conditioning sigma recorded in a generator file (metadata generator_sigma), else the default. */
export function generatorSigma(file: string): number {
  if (!file.endsWith('.safetensors')) return DEFAULT_SIGMA_C;
  const v = readSafetensorsHeader(file).metadata.generator_sigma;
  return v === undefined ? DEFAULT_SIGMA_C : Number(v);
}
