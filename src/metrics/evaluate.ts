// dmd eval: class-balanced samples from a one-step generator (or a teacher with Heun), then
// FD-<classifier> (Fréchet distance in the evaluation classifier's features), FID (with a
// user-supplied Inception TorchScript), per-class balance and the classifier's accuracy on the samples.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { tidy, keep } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { randn, Generator } from '../tensor/random.js';
import { tensor } from '../tensor/create.js';
import { oneHot } from '../nn/functional.js';
import { resolveDevice } from '../tensor/device.js';
import { loadImageModel } from '../dmd/generator.js';
import { openDataset } from '../data/sources.js';
import { ImageLoader } from '../data/loader.js';
import { readNpz } from '../io/npz.js';
import { Progress } from '../train/progress.js';
import { FeatureClassifier } from './classifier.js';
import { InceptionDetector } from './fid.js';
import { StatsAccumulator, frechetDistance, type Gaussian } from './frechet.js';
import { defaultClassifierPath } from './default-classifier.js';

export const EvalConfigSchema = z.object({
  generator: z.string().optional().describe('one-step generator file'),
  teacher: z.string().optional().describe('evaluate a teacher with Heun instead (default when no --generator: the bundled teacher)'),
  steps: z.number().int().positive().default(18).describe('Heun steps for --teacher'),
  guidance: z.number().positive().default(1).describe('classifier-free guidance weight for --teacher'),
  num: z.number().int().min(2).default(10000).describe('number of generated samples'),
  ref: z.string().default('fashion-mnist').describe('reference: a dataset, or an .npz with mu/sigma (Inception statistics, for FID)'),
  refNum: z.number().int().min(2).optional().describe('use at most this many reference images'),
  classifier: z.string().optional().describe('evaluation classifier (dmd classifier); default: the bundled Fashion-MNIST one when the data fits'),
  inception: z.string().optional().describe('Inception-v3 TorchScript (inception-2015-12-05.pt) for FID'),
  batchSize: z.number().int().positive().default(250).describe('images per batch'),
  seed: z.number().int().min(0).default(0).describe('noise seed'),
  device: z.string().default('auto').describe("'cpu', 'cuda', 'cuda:N' or 'auto'"),
  out: z.string().default('metrics.json').describe('where the metrics JSON is written'),
});
export type EvalConfig = z.infer<typeof EvalConfigSchema>;

export interface EvalResult {
  [metric: string]: number | string | number[] | null;
}

export async function evaluate(cfg: EvalConfig, log: (s: string) => void = console.log): Promise<EvalResult> {
  const device = resolveDevice(cfg.device);
  const model = loadImageModel({ ...cfg, device });
  const c = model.net.config;
  let clsFile = cfg.classifier;
  if (!clsFile && c.img_channels === 1 && c.img_resolution === 32 && c.label_dim === 10) clsFile = defaultClassifierPath();
  const cls = clsFile ? FeatureClassifier.load(clsFile, { device }) : null;
  if (cls && (cls.spec.inChannels !== c.img_channels || cls.spec.resolution !== c.img_resolution))
    throw new Error(`classifier ${clsFile} takes ${cls.spec.inChannels}x${cls.spec.resolution}x${cls.spec.resolution} images, the generator makes ${c.img_channels}x${c.img_resolution}x${c.img_resolution}`);
  const inc = cfg.inception ? new InceptionDetector(cfg.inception, device) : null;
  if (!cls && !inc) throw new Error('nothing to measure: give --classifier (dmd classifier) and/or --inception (Inception-v3 TorchScript)');

  // generated samples
  const gen = Generator.create('cpu', cfg.seed);
  const fdGen = new StatsAccumulator();
  const fidGen = new StatsAccumulator();
  const classes = c.label_dim;
  const hist = new Array<number>(cls?.spec.classes ?? 0).fill(0);
  let correct = 0;
  const t0 = performance.now();
  const progress = new Progress({ total: cfg.num, label: 'eval' });
  for (let b = 0; b < cfg.num; b += cfg.batchSize) {
    const n = Math.min(cfg.batchSize, cfg.num - b);
    noGrad(() => tidy(() => {
      const labelIdx = Array.from({ length: n }, (_, i) => (classes ? (b + i) % classes : 0));
      const z = randn([n, c.img_channels, c.img_resolution, c.img_resolution], { generator: gen }).to(device);
      const labels = classes ? oneHot(tensor(labelIdx, { dtype: 'int64' }), classes).to(device) : null;
      const x = model.sample(z, labels).clamp(-1, 1);
      if (cls) {
        fdGen.add(cls.features(x));
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

  // reference statistics
  let fdRef: Gaussian | null = null;
  let fidRef: Gaussian | null = null;
  if (cfg.ref.endsWith('.npz')) {
    const arrays = readNpz(cfg.ref);
    const mu = arrays.get('mu');
    const sigma = arrays.get('sigma');
    if (!mu || !sigma) throw new Error(`${cfg.ref}: expected arrays 'mu' and 'sigma' (EDM fid-refs format)`);
    fidRef = { mu: keep(mu), sigma: keep(sigma), count: 0 };
    if (cls) log('note: an .npz reference holds Inception statistics only; FD in classifier features is skipped');
  } else {
    const src = openDataset(cfg.ref);
    const loader = new ImageLoader(src, { batchSize: cfg.batchSize, resolution: c.img_resolution, channels: c.img_channels, device, shuffle: false, numClasses: Math.max(src.numClasses, 1) });
    const fdR = new StatsAccumulator();
    const fidR = new StatsAccumulator();
    const total = Math.min(src.size, cfg.refNum ?? src.size);
    for (let b = 0; b < total; b += cfg.batchSize) {
      const idx = Array.from({ length: Math.min(cfg.batchSize, total - b) }, (_, i) => b + i);
      noGrad(() => tidy(() => {
        const { images } = loader.batch(idx);
        if (cls) fdR.add(cls.features(images));
        if (inc) fidR.add(inc.features(images));
      }));
    }
    if (cls) fdRef = fdR.stats();
    if (inc) fidRef = fidR.stats();
  }

  const result: EvalResult = {
    model: path.resolve(model.file),
    mode: model.oneStep ? 'one-step' : `heun-${cfg.steps}`,
    nfe: model.nfe,
    num: cfg.num,
    ref: cfg.ref,
    images_per_second: cfg.num / genSeconds,
  };
  if (cls && fdRef) {
    result[`FD-${cls.spec.name}`] = frechetDistance(fdGen.stats(), fdRef);
    result.classifier = path.resolve(clsFile!);
  }
  if (cls) {
    const total = hist.reduce((a, v) => a + v, 0);
    result.class_fractions = hist.map((v) => v / total);
    result.class_balance_min_over_max = Math.min(...hist) / Math.max(...hist, 1);
    if (classes) result.classifier_accuracy_on_samples = correct / total;
  }
  if (inc && fidRef) result.FID = frechetDistance(fidGen.stats(), fidRef);
  writeFileSync(cfg.out, `${JSON.stringify(result, null, 2)}\n`);
  for (const [k, v] of Object.entries(result)) if (typeof v === 'number') log(`${k}: ${Number.isInteger(v) ? v : v.toFixed(4)}`);
  log(`wrote ${cfg.out}`);
  model.net.dispose();
  cls?.dispose();
  inc?.dispose();
  return result;
}
