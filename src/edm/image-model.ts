// What `dmd sample`, `dmd eval` and the demo server draw images from: a one-step generator file, or a
// teacher sampled with EDM's Heun sampler. A teacher passed as a generator (or the reverse) is refused.
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import type { Device } from '../tensor/device.js';
import type { EDMNetwork } from './network.js';
import { CheckpointError, loadEDM, readEDMInfo } from './checkpoint.js';
import { sampleEDM } from './sampler.js';
import { defaultTeacherPath } from './default-teacher.js';
import { generate, generatorSigma } from './one-step.js';

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

/** Checks which of --generator / --teacher was given and that the file is of that kind; returns the file. */
export function imageModelFile(o: { generator?: string; teacher?: string }): { file: string; oneStep: boolean } {
  if (o.generator !== undefined && o.teacher !== undefined)
    throw new CheckpointError('give either --generator (a one-step generator from dmd-train) or --teacher (sampled with Heun), not both');
  const oneStep = o.generator !== undefined;
  const file = o.generator ?? o.teacher ?? defaultTeacherPath();
  const role = readEDMInfo(file).role;
  if (oneStep && role !== 'generator')
    throw new CheckpointError(`${file} is a teacher, not a one-step generator from dmd-train; pass it as --teacher (sampled with Heun), or give the generator.safetensors of a dmd-train run`);
  if (!oneStep && role === 'generator')
    throw new CheckpointError(`${file} is a one-step generator from dmd-train, not a teacher; pass it as --generator`);
  return { file, oneStep };
}

export function loadImageModel(o: ImageModelOptions): ImageModel {
  const { file, oneStep } = imageModelFile(o);
  const sigmaC = oneStep ? generatorSigma(file) : 0;
  const net = loadEDM(file, { device: o.device });
  return {
    file,
    net,
    oneStep,
    nfe: oneStep ? 1 : 2 * o.steps - 1,
    sample: (z, labels) => (oneStep ? generate(net, z, labels, sigmaC) : tidy(() => sampleEDM(net, z, labels, { numSteps: o.steps, guidance: o.guidance }).x.to('float32'))),
  };
}
