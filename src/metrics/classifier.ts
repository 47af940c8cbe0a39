// The evaluation classifier of `dmd classifier`: a small CNN trained on a labelled dataset, whose
// pooled features give Fréchet distances reported as FD-<name> (never as FID), and whose
// predictions give per-class balance and accuracy of conditional samples.
import path from 'node:path';
import { z } from 'zod';
import { N } from '../native.js';
import { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { tidy, dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { manualSeed } from '../tensor/random.js';
import type { Device } from '../tensor/device.js';
import { AdamW } from '../nn/optim.js';
import { crossEntropy } from '../nn/functional.js';
import { readSafetensors, writeSafetensors, readSafetensorsHeader } from '../io/safetensors.js';
import { openDataset } from '../data/sources.js';
import { ImageLoader } from '../data/loader.js';
import { Progress } from '../train/progress.js';
import { resolveDevice } from '../tensor/device.js';

/** Bumped whenever the native network changes in a way that old weights would compute differently. */
export const CLASSIFIER_ARCH = 'v1-groupnorm8';

export interface ClassifierSpec {
  inChannels: number;
  classes: number;
  width: number;
  resolution: number;
  /** short name used in metric labels (FD-<name>) */
  name: string;
}

export class FeatureClassifier extends Module {
  private constructor(readonly spec: ClassifierSpec) {
    super(N.headCreate('classifier', { inChannels: spec.inChannels, classes: spec.classes, width: spec.width }));
  }

  static create(spec: ClassifierSpec, seed = 0): FeatureClassifier {
    manualSeed(seed);
    return new FeatureClassifier(spec);
  }

  static load(file: string, o: { device?: Device } = {}): FeatureClassifier {
    const meta = readSafetensorsHeader(file).metadata;
    if (meta.kind !== 'dmd-classifier' || !meta.spec) throw new Error(`${file}: not a dmd classifier file (make one with 'dmd classifier')`);
    if (meta.arch !== CLASSIFIER_ARCH) throw new Error(`${file}: made for classifier architecture ${meta.arch ?? 'v0'}, this version builds ${CLASSIFIER_ARCH}; retrain it with 'dmd classifier'`);
    const c = new FeatureClassifier(JSON.parse(meta.spec) as ClassifierSpec);
    const r = readSafetensors(file);
    noGrad(() => c.loadStateDict(r.tensors));
    dispose(r.tensors);
    c.eval().requiresGrad_(false);
    if (o.device && o.device !== 'cpu') c.to({ device: o.device });
    return c;
  }

  save(file: string, extra: Record<string, string> = {}): void {
    tidy(() => writeSafetensors(file, new Map([...this.stateDict()].map(([k, v]) => [k, v.to('cpu').contiguous()])), { kind: 'dmd-classifier', arch: CLASSIFIER_ARCH, spec: JSON.stringify(this.spec), ...extra }));
  }

  /** Pooled features [N, 4 width] of images in [-1, 1]. */
  features(x: Tensor): Tensor { return new Tensor(N.headForward(this.handle, x.handle, 'features')); }
  logits(x: Tensor): Tensor { return new Tensor(N.headForward(this.handle, x.handle, 'logits')); }
}

export const ClassifierConfigSchema = z.object({
  out: z.string().describe('output classifier file (.safetensors)'),
  data: z.string().default('fashion-mnist').describe('labelled training dataset'),
  test: z.string().default('fashion-mnist:test').describe('labelled test dataset for the reported accuracy'),
  name: z.string().default('fmnist').describe('short name of the feature space (metrics are reported as FD-<name>)'),
  resolution: z.number().int().positive().default(32).describe('input resolution (images are padded/resized like the generator output)'),
  width: z.number().int().positive().default(32).describe('channels of the first stage (features have 4x as many)'),
  epochs: z.number().positive().default(3).describe('training epochs'),
  batchSize: z.number().int().positive().default(128).describe('images per step'),
  lr: z.number().positive().default(2e-3).describe('AdamW learning rate'),
  seed: z.number().int().min(0).default(0).describe('random seed'),
  device: z.string().default('auto').describe("'cpu', 'cuda', 'cuda:N' or 'auto'"),
});
export type ClassifierConfig = z.infer<typeof ClassifierConfigSchema>;

/** Accuracy of a classifier on a labelled dataset (fraction correct). */
export function accuracy(c: FeatureClassifier, loader: ImageLoader, limit = Infinity): number {
  const n = Math.min(loader.source.size, limit);
  let right = 0;
  for (let b = 0; b < n; b += loader.batchSize) {
    const idx = Array.from({ length: Math.min(loader.batchSize, n - b) }, (_, i) => b + i);
    right += noGrad(() => tidy(() => {
      const pred = c.logits(loader.batch(idx).images).argmax(1).to('cpu').data() as BigInt64Array;
      return idx.reduce((a, i, k) => a + (Number(pred[k]) === loader.source.labels![i] ? 1 : 0), 0);
    }));
  }
  return right / n;
}

export async function trainClassifier(cfg: ClassifierConfig, log: (s: string) => void = console.log): Promise<{ accuracy: number; file: string }> {
  const device = resolveDevice(cfg.device);
  const train = openDataset(cfg.data);
  if (!train.labels) throw new Error(`${train.name} has no labels; the classifier needs a labelled dataset`);
  const spec: ClassifierSpec = { inChannels: train.channels, classes: train.numClasses, width: cfg.width, resolution: cfg.resolution, name: cfg.name };
  const c = FeatureClassifier.create(spec, cfg.seed);
  if (device !== 'cpu') c.to({ device });
  c.train();
  const loader = new ImageLoader(train, { batchSize: cfg.batchSize, resolution: cfg.resolution, device, seed: cfg.seed });
  const opt = new AdamW(c.parameters(), { lr: cfg.lr, weightDecay: 1e-4 });
  const steps = Math.ceil((cfg.epochs * train.size) / cfg.batchSize);
  const progress = new Progress({ total: steps, label: 'classifier' });
  for (let s = 1; s <= steps; s++) {
    const loss = tidy(() => {
      const { images, labels } = loader.next();
      const target = labels!.argmax(1);
      const l = crossEntropy(c.logits(images), target, 0.05);
      opt.zeroGrad();
      l.backward();
      opt.step(cfg.lr * Math.min(1, s / 100) * (0.5 + 0.5 * Math.cos((Math.PI * s) / steps)));
      return l.item();
    });
    progress.update(s, { loss });
    if (s % 20 === 0) await new Promise<void>((r) => setImmediate(r));
  }
  c.eval();
  const test = openDataset(cfg.test);
  const acc = accuracy(c, new ImageLoader(test, { batchSize: 500, resolution: cfg.resolution, device, shuffle: false, numClasses: spec.classes }));
  c.save(cfg.out, { accuracy: String(acc), data: cfg.data, test: cfg.test });
  log(`classifier: test accuracy ${(acc * 100).toFixed(2)}% on ${test.name}; wrote ${path.resolve(cfg.out)}`);
  opt.dispose();
  c.dispose();
  return { accuracy: acc, file: cfg.out };
}
