// The one-step generator of DMD: G(z) = D_G(sigma_c z; sigma_c, labels), an EDM network evaluated once
// at the conditioning noise level sigma_c (80 = EDM's sigma_max). Generator files are teacher-format
// files with role "generator" and their sigma_c in the metadata.
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { full } from '../tensor/create.js';
import type { EDMNetwork, ExecutionDType } from './network.js';
import { readEDMInfo, saveEDM } from './checkpoint.js';

export const DEFAULT_SIGMA_C = 80;

export function generate(G: EDMNetwork, z: Tensor, labels: Tensor | null, sigmaC = DEFAULT_SIGMA_C, dtype?: ExecutionDType): Tensor {
  return tidy(() => G.forward(z.mul(sigmaC), full([z.shape[0]!], sigmaC, { device: z.device }), { labels, dtype }));
}

/** The conditioning sigma recorded in a generator file (metadata generator_sigma), else the default. */
export function generatorSigma(file: string): number {
  const v = readEDMInfo(file).metadata.generator_sigma;
  const s = v === undefined ? DEFAULT_SIGMA_C : Number(v);
  if (!(s > 0 && Number.isFinite(s))) throw new RangeError(`${file}: generator_sigma '${v}' is not a positive number`);
  return s;
}

/** Writes a one-step generator file (eval mode during the write). */
export function saveGenerator(G: EDMNetwork, file: string, sigmaC: number, metadata: Record<string, string> = {}): void {
  const wasTraining = G.training;
  G.eval();
  try {
    saveEDM(G, file, { ...metadata, generator_sigma: String(sigmaC) }, 'generator');
  } finally {
    G.train(wasTraining);
  }
}
