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
import { runTraining, type RunOptions } from '../train/run.js';
import { runSettingsShape, settingsIdentity } from '../train/settings.js';
import { TrainState } from '../train/state.js';
import { warmupCosine } from '../nn/schedule.js';
import { fields } from '../util/fields.js';
import { resolveDevice } from '../tensor/device.js';
import { defaultClassifierPath } from './default-classifier.js';

export class ClassifierError extends Error {
  readonly code = 'ERR_CLASSIFIER';
}

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
  /** the file it was loaded from (null when created here) */
  file: string | null = null;

  private constructor(readonly spec: ClassifierSpec) {
    super(N.classifierCreate({ inChannels: spec.inChannels, classes: spec.classes, width: spec.width }));
  }

  static create(spec: ClassifierSpec, seed = 0): FeatureClassifier {
    manualSeed(seed);
    return new FeatureClassifier(spec);
  }

  static load(file: string, o: { device?: Device } = {}): FeatureClassifier {
    let meta: Record<string, string>;
    try {
      meta = readSafetensorsHeader(file).metadata;
    } catch (e) {
      throw new ClassifierError(`--classifier ${file}: ${e instanceof Error ? e.message : String(e)} (make a classifier with 'dmd classifier')`);
    }
    if (meta.kind !== 'dmd-classifier' || !meta.spec) throw new ClassifierError(`${file}: not a dmd classifier file (make one with 'dmd classifier')`);
    if (meta.arch !== CLASSIFIER_ARCH) throw new ClassifierError(`${file}: made for classifier architecture ${meta.arch ?? 'v0'}, this version builds ${CLASSIFIER_ARCH}; retrain it with 'dmd classifier'`);
    let spec: ClassifierSpec;
    try {
      spec = JSON.parse(meta.spec) as ClassifierSpec;
    } catch {
      throw new ClassifierError(`${file}: its spec metadata is not valid JSON (a damaged file? retrain it with 'dmd classifier')`);
    }
    const c = new FeatureClassifier(spec);
    try {
      const r = readSafetensors(file);
      try {
        noGrad(() => c.loadStateDict(r.tensors));
      } finally {
        dispose(r.tensors);
      }
    } catch (e) {
      c.dispose();
      throw new ClassifierError(`${file}: the weights do not fit its spec (${e instanceof Error ? e.message : String(e)})`);
    }
    c.eval().requiresGrad_(false);
    if (o.device && o.device !== 'cpu') c.to({ device: o.device });
    c.file = file;
    return c;
  }

  save(file: string, extra: Record<string, string> = {}): void {
    tidy(() => writeSafetensors(file, new Map([...this.stateDict()].map(([k, v]) => [k, v.to('cpu').contiguous()])), { kind: 'dmd-classifier', arch: CLASSIFIER_ARCH, spec: JSON.stringify(this.spec), ...extra }, 'classifier'));
  }

  /** Pooled features [N, 4 width] of images in [-1, 1]. */
  features(x: Tensor): Tensor { return new Tensor(N.classifierFeatures(this.handle, x.handle)); }
  logits(x: Tensor): Tensor { return new Tensor(N.classifierLogits(this.handle, x.handle)); }
}

/**
 * The evaluation classifier for images of a network config: the given file, else the bundled
 * Fashion-MNIST classifier when the images fit it (1x32x32, 10 classes), else null. Its input size is
 * checked against the images.
 */
/** The images a generator makes, as an evaluation sees them (an EDM config has these fields). */
export interface ImageSpec {
  img_channels: number;
  img_resolution: number;
  label_dim: number;
}

export function evaluationClassifier(file: string | undefined, c: ImageSpec, device: Device): FeatureClassifier | null {
  const f = file ?? (c.img_channels === 1 && c.img_resolution === 32 && c.label_dim === 10 ? defaultClassifierPath() : undefined);
  if (!f) return null;
  const cls = FeatureClassifier.load(f, { device });
  if (cls.spec.inChannels !== c.img_channels || cls.spec.resolution !== c.img_resolution) {
    cls.dispose();
    throw new ClassifierError(`classifier ${f} takes ${cls.spec.inChannels}x${cls.spec.resolution}x${cls.spec.resolution} images, the generator makes ${c.img_channels}x${c.img_resolution}x${c.img_resolution}`);
  }
  return cls;
}

export const ClassifierConfigSchema = z.object({
  ...runSettingsShape({ checkpointEvery: 500, metricsEvery: 20 }),
  data: z.string().min(1).default('fashion-mnist').describe('labelled training dataset'),
  test: z.string().min(1).default('fashion-mnist:test').describe('labelled test dataset for the reported accuracy'),
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only').default('fmnist').describe('short name of the feature space (metrics are reported as FD-<name>)'),
  resolution: z.number().int().positive().max(4096).default(32).describe('input resolution (images are padded/resized like the generator output)'),
  width: z.number().int().positive().max(4096).default(32).describe('channels of the first stage (features have 4x as many)'),
  epochs: z.number().positive().default(3).describe('training epochs'),
  batchSize: fields.batchSize(128),
  lr: z.number().positive().default(2e-3).describe('AdamW learning rate'),
  seed: fields.seed(),
  device: fields.device(),
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

export async function trainClassifier(cfg: ClassifierConfig, log: (s: string) => void = console.log, o: RunOptions = {}): Promise<{ accuracy: number | null; file: string; status: 'done' | 'interrupted' }> {
  const device = resolveDevice(cfg.device);
  const train = openDataset(cfg.data);
  if (!train.labels) throw new ClassifierError(`${train.name} has no labels; the classifier needs a labelled dataset`);
  const test = openDataset(cfg.test);
  if (!test.labels || test.numClasses > train.numClasses) throw new ClassifierError(`--test ${cfg.test}: needs labels of at most the ${train.numClasses} classes of --data`);
  const spec: ClassifierSpec = { inChannels: train.channels, classes: train.numClasses, width: cfg.width, resolution: cfg.resolution, name: cfg.name };
  const c = FeatureClassifier.create(spec, cfg.seed);
  if (device !== 'cpu') c.to({ device });
  c.train();
  const loader = new ImageLoader(train, { batchSize: cfg.batchSize, resolution: cfg.resolution, device, seed: cfg.seed });
  const opt = new AdamW(c.parameters(), { lr: cfg.lr, weightDecay: 1e-4 });
  const steps = Math.ceil((cfg.epochs * train.size) / cfg.batchSize);
  const schedule = warmupCosine(100, steps);
  let step = 0;
  const state = new TrainState(device)
    .module('classifier', c)
    .optimizer('opt', opt)
    .value('step', () => step, (v) => { step = v; })
    .value('loader', () => loader.state(), (v) => loader.loadState(v));
  const file = path.join(cfg.out, 'classifier.safetensors');
  try {
    const r = await runTraining(cfg, {
      kind: 'classifier',
      label: 'classifier',
      total: steps,
      state,
      position: () => step,
      identity: settingsIdentity(cfg, ['epochs', 'test']),
      config: cfg,
      info: { device, data: train.name, images: train.size, classes: train.numClasses, batch: cfg.batchSize },
      finite: ['loss'],
      step: () => {
        const loss = tidy(() => {
          const { images, labels } = loader.next();
          const l = crossEntropy(c.logits(images), labels!.argmax(1), 0.05);
          opt.zeroGrad();
          l.backward();
          opt.step(cfg.lr * schedule(step + 1));
          return l.item();
        });
        step += 1;
        return { loss };
      },
      extra: () => ({ lr: cfg.lr * schedule(step), epoch: (step * cfg.batchSize) / train.size }),
    }, log, o);
    if (r.status !== 'done') return { accuracy: null, file, status: r.status };
    c.eval();
    const acc = accuracy(c, new ImageLoader(test, { batchSize: 500, resolution: cfg.resolution, device, shuffle: false, numClasses: spec.classes }));
    c.save(file, { accuracy: String(acc), data: cfg.data, test: cfg.test });
    log(`classifier: test accuracy ${(acc * 100).toFixed(2)}% on ${test.name}; wrote ${path.resolve(file)}`);
    return { accuracy: acc, file, status: 'done' };
  } finally {
    opt.dispose();
    c.dispose();
  }
}
