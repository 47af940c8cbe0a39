// EDM teachers (EDMPrecond networks in pixel space) as DMD score models: the level is sigma, the
// table is DMD2's 1000 Karras sigmas, x_noisy = x + sigma n, the fake score trains on EDM's weighted
// denoising loss, the one-step generator is G(z) = D(sigma_c z; sigma_c, labels), and the GAN
// classifier reads the UNet's encoder output. The only file of dmd/ that knows the EDM network.
import type { Tensor } from '../../tensor/tensor.js';
import { keep, tidy } from '../../tensor/scope.js';
import type { Device, ExecutionDType } from '../../tensor/device.js';
import { oneHot } from '../../nn/functional.js';
import { EDMNetwork, trainingBytesPerImage } from '../../edm/network.js';
import { detectFormat, loadEDM, readEDMInfo } from '../../edm/checkpoint.js';
import { karrasTable } from '../../edm/sigmas.js';
import { denoiser } from '../../edm/guidance.js';
import { generate, saveGenerator } from '../../edm/one-step.js';
import { gridInputs } from '../../data/grid.js';
import type { ImageSpec } from '../../metrics/classifier.js';
import type { Conditioning, GeneratorLevelSettings, NoisedBatch, NoiseSchedule, ScheduleSettings, ScoreFn, ScoreModel, ScoreOptions } from '../score-model.js';

/** DMD2's discretised EDM forward process: sigma = table[t], x_noisy = x + sigma n. */
export class EDMNoiseSchedule implements NoiseSchedule {
  readonly levels: Tensor;

  constructor(s: ScheduleSettings, device: Device, private readonly sigmaData: number) {
    this.levels = keep(karrasTable(s.numTrainTimesteps, { sigmaMin: s.sigmaMin, sigmaMax: s.sigmaMax, rho: s.rho, device }));
  }

  get numLevels(): number { return this.levels.shape[0]!; }

  addNoise(x: Tensor, tIndex: Tensor, noise: Tensor): { noisy: Tensor; level: Tensor } {
    return tidy(() => {
      const sigma = this.levels.indexSelect(0, tIndex);
      return { noisy: x.add(noise.mul(sigma.reshape([-1, 1, 1, 1]))), level: sigma };
    });
  }

  /** the smallest sigma of the table: DMD2 gives the classifier clean images at sigma_min */
  cleanLevel(n: number): Tensor {
    return this.levels.slice(0, 0, 1).expand([n]);
  }

  /** EDM's weighted denoising loss: mean((1/sigma^2 + 1/sigma_data^2) (D(x_noisy) - x)^2). */
  denoisingLoss(pred: Tensor, b: NoisedBatch): Tensor {
    return tidy(() => {
      const weight = b.level.reshape([-1, 1, 1, 1]).pow(-2).add(1 / this.sigmaData ** 2);
      return weight.mul(pred.sub(b.x).square()).mean();
    });
  }

  dispose(): void { this.levels.dispose(); }
}

export class EDMScoreModel implements ScoreModel {
  readonly family = 'edm';

  constructor(readonly net: EDMNetwork) {}

  get sampleShape(): number[] {
    const c = this.net.config;
    return [c.img_channels, c.img_resolution, c.img_resolution];
  }
  get imageSpec(): ImageSpec { return this.net.config; }
  get conditionDim(): number { return this.net.config.label_dim; }
  get device(): Device { return this.net.device; }
  get training(): boolean { return this.net.training; }
  /** class-conditional EDM teachers trained with label dropout have an unconditional branch */
  get guidable(): boolean { return this.conditionDim > 0; }

  describe(): string {
    const c = this.net.config;
    const parts = [`EDM ${c.model_type}`, `${c.img_channels}x${c.img_resolution}x${c.img_resolution}`, c.label_dim ? `${c.label_dim} classes` : 'unconditional'];
    if (c.sigma_data !== 0.5) parts.push(`sigma_data ${c.sigma_data}`);
    return parts.join(', ');
  }

  score(o: ScoreOptions = {}): ScoreFn { return denoiser(this.net, o); }

  features(noisy: Tensor, level: Tensor, cond: Conditioning, dtype?: ExecutionDType): Tensor {
    return this.net.bottleneck(noisy, level, { labels: cond, dtype });
  }

  featureShape(): { channels: number; resolution: number } { return this.net.bottleneckShape(); }

  generate(z: Tensor, cond: Conditioning, level: number, dtype?: ExecutionDType): Tensor {
    return generate(this.net, z, cond, level, dtype);
  }

  generatorLevel(s: GeneratorLevelSettings): number { return s.sigmaC; }

  describeLevel(level: number): string { return `sigma_c ${level}`; }

  /** 8 rows of one image per class (64 images for unconditional networks). */
  gridInputs(seed: number): { z: Tensor; cond: Conditioning; columns?: number } {
    const c = this.net.config;
    const g = gridInputs({ count: c.label_dim ? c.label_dim * 8 : 64, channels: c.img_channels, resolution: c.img_resolution, classes: c.label_dim, seed, device: this.device });
    return { z: g.z, cond: g.labels, columns: c.label_dim || undefined };
  }

  toImages(x: Tensor): Tensor { return x.clone(); }

  /** Pixel-space samples are the images. */
  differentiableImages(x: Tensor): Tensor { return x; }

  dataSamples(images: Tensor): Tensor { return images; }

  dataConditions(b: { labels: Tensor | null }): Conditioning { return this.conditionDim ? b.labels : null; }

  conditionsOf(index: Tensor | null): Conditioning {
    const k = this.conditionDim;
    return k && index ? oneHot(index, k).to(this.device) : null;
  }

  schedule(s: ScheduleSettings): EDMNoiseSchedule {
    return new EDMNoiseSchedule(s, this.device, this.net.config.sigma_data);
  }

  randomConditions(n: number, randint: (low: number, high: number, n: number) => Tensor): Conditioning {
    const k = this.conditionDim;
    return k ? tidy(() => oneHot(randint(0, k, n), k)) : null;
  }

  /** 24 sets of the network's feature maps: measured on the CPU to cover a DMD iteration with the GAN */
  trainingBytesPerImage(dtype: ExecutionDType): number {
    return trainingBytesPerImage(this.net.config, 24, dtype);
  }

  frozenBytes(): number { return 0; }

  saveGenerator(file: string, level: number, metadata: Record<string, string>): void {
    saveGenerator(this.net, file, level, metadata);
  }

  clone(): EDMScoreModel { return new EDMScoreModel(this.net.clone()); }
  requiresGrad_(on: boolean): this { this.net.requiresGrad_(on); return this; }
  train(on = true): this { this.net.train(on); return this; }
  eval(): this { this.net.eval(); return this; }
  parameters(): Tensor[] { return this.net.parameters(); }
  stateDict(): Map<string, Tensor> { return this.net.stateDict(); }
  loadStateDict(state: Map<string, Tensor>): unknown { return this.net.loadStateDict(state); }
  parameterCount(): number { return this.net.parameterCount(); }
  dispose(): void { this.net.dispose(); }
}

/** Thrown when a file cannot serve as a DMD teacher (the message names the file and what to pass instead). */
export class TeacherFileError extends Error {
  readonly code = 'ERR_DMD_SETUP';
}

/** Loads an EDM teacher file (refusing one-step generators) as a score model. */
export function loadEDMTeacher(file: string, device: Device): EDMScoreModel {
  // an NVlabs snapshot (.pkl) is always a teacher: no need to read it twice
  if (detectFormat(file) !== 'pkl' && readEDMInfo(file).role === 'generator')
    throw new TeacherFileError(`--teacher ${file} is a one-step generator from dmd-train, not a teacher; distil from the EDM teacher it came from`);
  return new EDMScoreModel(loadEDM(file, { device }));
}
