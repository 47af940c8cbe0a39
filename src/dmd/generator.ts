// The one-step generator of DMD: G(z) = D_G(sigma_c z; sigma_c, labels), an EDM network evaluated once
// at the conditioning noise level sigma_c (80 = EDM's sigma_max).
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { full } from '../tensor/create.js';
import type { EDMNetwork, ExecutionDType } from '../edm/network.js';
import type { Device } from '../tensor/device.js';
import { loadEDM } from '../edm/checkpoint.js';
import { sampleEDM } from '../edm/sampler.js';
import { defaultTeacherPath } from '../edm/default-teacher.js';
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

export interface ImageModelOptions {
  /** a one-step generator file */
  generator?: string;
  /** a teacher file sampled with Heun (default without a generator: the bundled teacher) */
  teacher?: string;
  steps: number;
  guidance: number;
  device: Device;
}

export interface ImageModel {
  file: string;
  net: EDMNetwork;
  oneStep: boolean;
  /** network evaluations per image */
  nfe: number;
  /** images in [-1, 1] (float32, unclamped) for noise z and labels */
  sample(z: Tensor, labels: Tensor | null): Tensor;
}

/** Loads what `dmd sample` and `dmd eval` draw images from: a one-step generator, or a teacher with Heun. */
export function loadImageModel(o: ImageModelOptions): ImageModel {
  const file = o.generator ?? o.teacher ?? defaultTeacherPath();
  const oneStep = o.generator !== undefined;
  const net = loadEDM(file, { device: o.device });
  const sigmaC = oneStep ? generatorSigma(file) : 0;
  return {
    file,
    net,
    oneStep,
    nfe: oneStep ? 1 : 2 * o.steps - 1,
    sample: (z, labels) => (oneStep ? generate(net, z, labels, sigmaC) : tidy(() => sampleEDM(net, z, labels, { numSteps: o.steps, guidance: o.guidance }).x.to('float32'))),
  };
}
