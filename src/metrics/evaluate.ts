// dmd eval: class-balanced samples from a one-step generator (or a teacher with Heun), then
// FD-<classifier> (Fréchet distance in the evaluation classifier's features) with its noise floor
// (the FD of as many held-out real images), precision and recall in the same features, FID (with a
// user-supplied Inception TorchScript), per-class balance and the classifier's accuracy on the samples.
// Every input (--ref, --out, the model, the classifier) is checked before any sample is generated.
import path from 'node:path';
import { z } from 'zod';
import type { Tensor } from '../tensor/tensor.js';
import { tidy, keep, dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { randn, Generator } from '../tensor/random.js';
import { tensor, cat } from '../tensor/create.js';
import { resolveDevice, type Device } from '../tensor/device.js';
import { oneHot } from '../nn/functional.js';
import { loadImageModel } from '../edm/image-model.js';
import { openDataset, type ImageSource } from '../data/sources.js';
import { ImageLoader } from '../data/loader.js';
import { readNpz } from '../io/npz.js';
import { Progress } from '../train/progress.js';
import { ensureParentDir, writeFileAtomic } from '../util/fs.js';
import { fields } from '../util/fields.js';
import { evaluationClassifier, type FeatureClassifier } from './classifier.js';
import { InceptionDetector } from './fid.js';
import { StatsAccumulator, frechetDistance, type Gaussian } from './frechet.js';
import { precisionRecall } from './precision-recall.js';

export const EvalConfigSchema = z.object({
  generator: z.string().min(1).optional().describe('one-step generator file'),
  teacher: z.string().min(1).optional().describe('evaluate a teacher with Heun instead (default when no --generator: the bundled teacher)'),
  steps: z.number().int().positive().default(18).describe('Heun steps for --teacher'),
  guidance: z.number().positive().default(1).describe('classifier-free guidance weight for --teacher'),
  num: z.number().int().min(2).default(10000).describe('number of generated samples'),
  ref: z.string().min(1).default('fashion-mnist').describe('reference: a dataset, or an .npz with mu/sigma (Inception statistics, for FID)'),
  refNum: z.number().int().min(2).optional().describe('use at most this many reference images (the next --num images give the noise floor)'),
  classifier: z.string().min(1).optional().describe('evaluation classifier (dmd classifier); default: the bundled Fashion-MNIST one when the data fits'),
  inception: z.string().min(1).optional().describe('Inception-v3 TorchScript (inception-2015-12-05.pt) for FID'),
  prK: z.number().int().positive().default(3).describe('k of the k-NN manifolds of precision and recall (Kynkäänniemi et al. 2019)'),
  batchSize: fields.batchSize(250, 'images per batch'),
  seed: fields.seed('noise seed'),
  device: fields.device(),
  out: z.string().min(1).default('metrics.json').describe('where the metrics JSON is written'),
});
export type EvalConfig = z.infer<typeof EvalConfigSchema>;

export interface EvalResult {
  [metric: string]: number | string | number[] | null;
}

export class EvalError extends Error {
  readonly code = 'ERR_EVAL';
}

/** Features of images [first, first + count) of a dataset, in batches. */
export function datasetFeatures(src: ImageSource, o: { first: number; count: number; batchSize: number; device: Device; resolution: number; channels: number }, extract: (images: Tensor) => void): void {
  const loader = new ImageLoader(src, { batchSize: Math.min(o.batchSize, src.size), resolution: o.resolution, channels: o.channels, device: o.device, shuffle: false, numClasses: Math.max(src.numClasses, 1) });
  for (let b = o.first; b < o.first + o.count; b += o.batchSize) {
    const idx = Array.from({ length: Math.min(o.batchSize, o.first + o.count - b) }, (_, i) => b + i);
    noGrad(() => tidy(() => extract(loader.batch(idx).images)));
  }
}

/** Class-balanced labels for samples [first, first + n): sample i gets class i mod classes. */
export function balancedLabels(first: number, n: number, classes: number): number[] {
  return Array.from({ length: n }, (_, i) => (classes ? (first + i) % classes : 0));
}

export async function evaluate(cfg: EvalConfig, log: (s: string) => void = console.log): Promise<EvalResult> {
  const device = resolveDevice(cfg.device);
  ensureParentDir(cfg.out, '--out');
  // the reference first: a bad --ref must not cost a whole sampling run
  let npz: Map<string, Tensor> | null = null;
  let refSource: ImageSource | null = null;
  if (cfg.ref.endsWith('.npz')) {
    npz = readNpz(cfg.ref);
    if (!npz.get('mu') || !npz.get('sigma')) {
      dispose(npz);
      throw new EvalError(`--ref ${cfg.ref}: expected arrays 'mu' and 'sigma' (EDM fid-refs format)`);
    }
  } else {
    refSource = openDataset(cfg.ref);
  }
  const model = loadImageModel({ ...cfg, device });
  let cls: FeatureClassifier | null = null;
  let inc: InceptionDetector | null = null;
  const accs: StatsAccumulator[] = [];
  const kept: Tensor[] = [];
  try {
    const c = model.net.config;
    cls = evaluationClassifier(cfg.classifier, c, device);
    inc = cfg.inception ? new InceptionDetector(cfg.inception, device) : null;
    if (!cls && !inc) throw new EvalError('nothing to measure: give --classifier (dmd classifier) and/or --inception (Inception-v3 TorchScript)');
    if (npz && !inc) throw new EvalError(`--ref ${cfg.ref} holds Inception statistics: FID needs --inception (or give a dataset as --ref for FD in classifier features)`);
    const refCount = refSource ? Math.min(refSource.size, cfg.refNum ?? refSource.size) : 0;
    if (refSource && refCount < 2) throw new EvalError(`--ref ${cfg.ref}: ${refSource.size} images, too few for statistics`);

    // generated samples
    const gen = Generator.create('cpu', cfg.seed);
    const [fdGen, fidGen] = [new StatsAccumulator(), new StatsAccumulator()];
    accs.push(fdGen, fidGen);
    const classes = c.label_dim;
    const hist = new Array<number>(cls?.spec.classes ?? 0).fill(0);
    let correct = 0;
    const t0 = performance.now();
    const progress = new Progress({ total: cfg.num, label: 'eval' });
    for (let b = 0; b < cfg.num; b += cfg.batchSize) {
      const n = Math.min(cfg.batchSize, cfg.num - b);
      noGrad(() => tidy(() => {
        const labelIdx = balancedLabels(b, n, classes);
        const zb = randn([n, c.img_channels, c.img_resolution, c.img_resolution], { generator: gen }).to(device);
        const labels = classes ? oneHot(tensor(labelIdx, { dtype: 'int64' }), classes).to(device) : null;
        const x = model.sample(zb, labels).clamp(-1, 1);
        if (cls) {
          const f = cls.features(x);
          fdGen.add(f);
          kept.push(keep(f.to({ device: 'cpu', dtype: 'float64' })));
          const pred = cls.logits(x).argmax(1).to('cpu').data() as BigInt64Array;
          pred.forEach((p, k) => {
            hist[Number(p)]! += 1;
            if (classes && Number(p) === labelIdx[k]) correct++;
          });
        }
        if (inc) fidGen.add(inc.features(x));
      }));
      progress.update(b + n, {}, 'img');
      await new Promise<void>((r) => setImmediate(r));
    }
    const genSeconds = (performance.now() - t0) / 1000;

    const result: EvalResult = {
      model: path.resolve(model.file),
      mode: model.oneStep ? 'one-step' : `heun-${cfg.steps}`,
      nfe: model.nfe,
      num: cfg.num,
      ref: cfg.ref,
      images_per_second: cfg.num / genSeconds,
    };

    // reference statistics, the noise floor (held-out real images) and precision/recall
    if (refSource) {
      const [fdR, fidR, floor] = [new StatsAccumulator(), new StatsAccumulator(), new StatsAccumulator()];
      accs.push(fdR, fidR, floor);
      const realFeatures: Tensor[] = [];
      let taken = 0;
      const geom = { batchSize: cfg.batchSize, device, resolution: c.img_resolution, channels: c.img_channels };
      datasetFeatures(refSource, { ...geom, first: 0, count: refCount }, (images) => {
        if (cls) {
          const f = cls.features(images);
          fdR.add(f);
          if (taken < cfg.num) {
            const part = f.narrow(0, 0, Math.min(f.shape[0]!, cfg.num - taken));
            realFeatures.push(keep(part.to({ device: 'cpu', dtype: 'float64' })));
            taken += part.shape[0]!;
          }
        }
        if (inc) fidR.add(inc.features(images));
      });
      const floorCount = Math.min(cfg.num, refSource.size - refCount);
      if (cls && floorCount >= 2) datasetFeatures(refSource, { ...geom, first: refCount, count: floorCount }, (images) => floor.add(cls!.features(images)));
      if (cls) {
        const name = `FD-${cls.spec.name}`;
        result[name] = frechetDistance(fdGen.stats(), fdR.stats());
        if (floorCount >= 2) {
          result[`${name}_noise_floor`] = frechetDistance(floor.stats(), fdR.stats());
          result.noise_floor_images = floorCount;
        }
        const pr = tidy(() => precisionRecall(cat(realFeatures), cat(kept), cfg.prK));
        result.precision = pr.precision;
        result.recall = pr.recall;
        dispose(realFeatures);
        result.classifier = cls.file ? path.resolve(cls.file) : null;
      }
      if (inc) result.FID = frechetDistance(fidGen.stats(), fidR.stats());
    } else if (npz && inc) {
      const ref: Gaussian = { mu: npz.get('mu')!, sigma: npz.get('sigma')!, count: 0 };
      result.FID = frechetDistance(fidGen.stats(), ref);
      if (cls) log('note: an .npz reference holds Inception statistics only; FD in classifier features is skipped');
    }
    if (cls) {
      const total = hist.reduce((a, v) => a + v, 0);
      result.class_fractions = hist.map((v) => v / total);
      result.class_balance_min_over_max = Math.min(...hist) / Math.max(...hist, 1);
      result.class_fraction_min = Math.min(...hist) / total;
      result.class_fraction_max = Math.max(...hist) / total;
      if (classes) result.classifier_accuracy_on_samples = correct / total;
    }
    writeFileAtomic(cfg.out, `${JSON.stringify(result, null, 2)}\n`);
    for (const [k, v] of Object.entries(result)) if (typeof v === 'number') log(`${k}: ${Number.isInteger(v) ? v : v.toFixed(4)}`);
    log(`wrote ${cfg.out}`);
    return result;
  } finally {
    model.net.dispose();
    cls?.dispose();
    inc?.dispose();
    for (const a of accs) a.dispose();
    dispose(kept);
    if (npz) dispose(npz);
  }
}
