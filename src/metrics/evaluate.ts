// dmd eval: class-balanced samples from a one-step generator (or a teacher with its sampler; SD models:
// samples of a prompt file), then
// FD-<classifier> (Fréchet distance in the evaluation classifier's features) with its noise floor
// (the FD of as many held-out real images), precision and recall in the same features, FID (with a
// user-supplied Inception TorchScript), per-class balance and the classifier's accuracy on the samples.
// Every input (--ref, --out, the model, the classifier) is checked before any sample is generated.
import path from 'node:path';
import { z } from 'zod';
import type { Tensor } from '../tensor/tensor.js';
import { tidy, keep, dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { tensor, cat, zeros } from '../tensor/create.js';
import { resolveDevice, type Device } from '../tensor/device.js';
import { openDataset, type ImageSource } from '../data/sources.js';
import { ImageLoader } from '../data/loader.js';
import { readNpz } from '../io/npz.js';
import { Progress } from '../train/progress.js';
import { ensureParentDir, atomicWrite } from '../util/fs.js';
import { fields, distributedShape, withoutLaunch } from '../util/fields.js';
import { Distributed } from '../distributed/context.js';
import { evaluationClassifier, type FeatureClassifier } from './classifier.js';
import { InceptionDetector } from './fid.js';
import { StatsAccumulator, frechetDistance, type Gaussian } from './frechet.js';
import { precisionRecall } from './precision-recall.js';
import { openEvalSampler } from './eval-samplers.js';
import { CLIPScorer } from './clip-score.js';

export const EvalConfigSchema = z.object({
  generator: z.string().min(1).optional().describe('one-step generator file'),
  teacher: z.string().min(1).optional().describe('evaluate a teacher with its sampler instead (EDM: Heun; SD: DDIM; default when no --generator: the bundled teacher)'),
  steps: z.number().int().positive().optional().describe('sampler steps for --teacher (default: EDM Heun 18, SD DDIM 25)'),
  guidance: z.number().positive().optional().describe('classifier-free guidance weight for --teacher (default: EDM 1, SD 7.5)'),
  prompts: z.string().min(1).optional().describe('evaluation prompts of a Stable Diffusion model (cycled; JSON Lines may give each a "class" for the classifier accuracy)'),
  size: z.number().int().positive().optional().describe("SD image size in pixels, a multiple of 8 (default: the model's)"),
  teacherConfig: z.string().min(1).optional().describe('an LDM config (v1-inference.yaml) giving the architecture of an SD checkpoint'),
  num: z.number().int().min(2).default(10000).describe('number of generated samples'),
  ref: z.string().min(1).optional().describe('reference: a dataset, or an .npz with mu/sigma (Inception statistics, for FID); default fashion-mnist, none when only a CLIP score is asked for'),
  refNum: z.number().int().min(2).optional().describe('use at most this many reference images (the next --num images give the noise floor)'),
  classifier: z.string().min(1).optional().describe('evaluation classifier (dmd classifier); default: the bundled Fashion-MNIST one when the data fits'),
  inception: z.string().min(1).optional().describe('Inception-v3 TorchScript (inception-2015-12-05.pt) for FID'),
  clip: z.string().min(1).optional().describe('CLIP ViT weights for a CLIP score of text-to-image samples (openai ViT-B-32.pt / ViT-L-14.pt, open_clip or Hugging Face CLIP checkpoints)'),
  prK: z.number().int().positive().default(3).describe('k of the k-NN manifolds of precision and recall (Kynkäänniemi et al. 2019)'),
  batchSize: fields.batchSize(250, 'images per batch'),
  seed: fields.seed('noise seed'),
  device: fields.device(),
  out: z.string().min(1).default('metrics.json').describe('where the metrics JSON is written'),
  ...distributedShape(),
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

/** What a batch of samples yields: classifier features and predictions, Inception features, CLIP scores [n, 1]. */
interface BatchOutputs {
  f: Tensor | null;
  p: Tensor | null;
  i: Tensor | null;
  c: Tensor | null;
}

/**
 * The per-batch outputs of every process, in batch order (this process's own when it runs alone). Each
 * process packs its batches into fixed-size tensors so that one allgather per output moves them.
 */
function gatherBatches(
  dist: Distributed,
  local: Map<number, BatchOutputs>,
  batches: number,
  bs: number,
  rows: (b: number) => number,
): Map<number, BatchOutputs> {
  if (!dist.enabled) return local;
  const slots = Math.ceil(batches / dist.size);
  const out = new Map<number, BatchOutputs>();
  for (let b = 0; b < batches; b++) out.set(b, { f: null, p: null, i: null, c: null });
  const first = [...local.values()][0];
  for (const key of ['f', 'p', 'i', 'c'] as const) {
    // every rank knows which outputs exist (same model, classifier and detector everywhere)
    const probe = first?.[key] ?? null;
    const has = dist.allgather(tensor([probe ? 1 : 0]));
    const width = dist.allgather(tensor([probe && probe.shape.length > 1 ? probe.shape[1]! : 0]));
    const any = has.some((t) => t.item() > 0);
    const d = Math.max(...width.map((t) => t.item()));
    dispose([has, width]);
    if (!any) continue;
    const packed = tidy(() => {
      const buf = key === 'p' ? zeros([slots * bs], { dtype: 'int64' }) : zeros([slots * bs, d], { dtype: 'float64' });
      for (const [b, r] of local) {
        const t = r[key]!;
        buf.narrow(0, Math.floor(b / dist.size) * bs, t.shape[0]!).copy_(t);
      }
      return buf;
    });
    const gathered = dist.allgather(packed);
    packed.dispose();
    for (let b = 0; b < batches; b++) {
      const src = gathered[b % dist.size]!;
      out.get(b)![key] = keep(src.narrow(0, Math.floor(b / dist.size) * bs, rows(b)).clone());
    }
    dispose(gathered);
  }
  dispose([...local.values()]);
  return out;
}

/**
 * Evaluates a generator (or a teacher). Launched as several processes (torchrun, srun,
 * --nproc-per-node) they share the sampling; rank 0 computes and writes the figures. `o.single` keeps
 * it to this process (e.g. rank 0 evaluating at the end of a distributed training run).
 */
export async function evaluate(cfg: EvalConfig, log: (s: string) => void = console.log, o: { single?: boolean } = {}): Promise<EvalResult> {
  const { dist, device } = o.single ? { dist: Distributed.single(), device: resolveDevice(cfg.device) } : Distributed.forCommand(cfg);
  if (!dist.isMain) log = () => {};
  ensureParentDir(cfg.out, '--out');
  // the reference first: a bad --ref must not cost a whole sampling run
  let npz: Map<string, Tensor> | null = null;
  let refSource: ImageSource | null = null;
  const refName = cfg.ref ?? (cfg.clip && !cfg.classifier && !cfg.inception ? null : 'fashion-mnist');
  if (refName?.endsWith('.npz')) {
    npz = readNpz(refName);
    if (!npz.get('mu') || !npz.get('sigma')) {
      dispose(npz);
      throw new EvalError(`--ref ${refName}: expected arrays 'mu' and 'sigma' (EDM fid-refs format)`);
    }
  } else if (refName) {
    refSource = openDataset(refName);
  }
  const model = openEvalSampler({ ...cfg, device });
  try {
    dist.agree('dmd eval settings', { ...withoutLaunch(cfg, ['device', 'out']), parameters: model.parameters });
  } catch (e) {
    model.dispose();
    throw e;
  }
  let cls: FeatureClassifier | null = null;
  let inc: InceptionDetector | null = null;
  let clip: CLIPScorer | null = null;
  const accs: StatsAccumulator[] = [];
  const kept: Tensor[] = [];
  try {
    const c = model.spec;
    cls = evaluationClassifier(cfg.classifier, c, device);
    inc = cfg.inception ? new InceptionDetector(cfg.inception, device) : null;
    if (cfg.clip && !model.promptsOf(0, 1)) throw new EvalError('--clip: a CLIP score compares images with their prompts; this model is not text-to-image');
    clip = cfg.clip ? CLIPScorer.load(cfg.clip, { device }) : null;
    if (!cls && !inc && !clip) throw new EvalError('nothing to measure: give --classifier (dmd classifier), --inception (Inception-v3 TorchScript) and/or --clip (CLIP ViT weights, text-to-image models)');
    if (npz && !inc) throw new EvalError(`--ref ${refName} holds Inception statistics: FID needs --inception (or give a dataset as --ref for FD in classifier features)`);
    const refCount = refSource ? Math.min(refSource.size, cfg.refNum ?? refSource.size) : 0;
    if (refSource && refCount < 2) throw new EvalError(`--ref ${refName}: ${refSource.size} images, too few for statistics`);

    // generated samples: batch b has its own seeded noise, so that processes can share the batches
    // (batch b on rank b mod size) and the figures do not depend on how many there are
    const bs = cfg.batchSize;
    const batches = Math.ceil(cfg.num / bs);
    const rows = (b: number) => Math.min(bs, cfg.num - b * bs);
    const t0 = performance.now();
    const progress = new Progress({ total: cfg.num, label: 'eval', quiet: !dist.isMain });
    const local = new Map<number, BatchOutputs>();
    let made = 0;
    for (let b = dist.rank; b < batches; b += dist.size) {
      const n = rows(b);
      local.set(b, noGrad(() => tidy(() => {
        const x = model.sample(b, b * bs, n, cfg.seed);
        return {
          f: cls ? keep(cls.features(x).to({ device: 'cpu', dtype: 'float64' })) : null,
          p: cls ? keep(cls.logits(x).argmax(1).to('cpu')) : null,
          i: inc ? keep(inc.features(x).to({ device: 'cpu', dtype: 'float64' })) : null,
          c: clip ? keep(clip.scores(x, model.promptsOf(b * bs, n)!).reshape([n, 1]).to('cpu')) : null,
        };
      })));
      made += n;
      progress.update(Math.min(cfg.num, made * dist.size), {}, 'img');
      dist.heartbeat();
      await new Promise<void>((r) => setImmediate(r));
    }
    const all = gatherBatches(dist, local, batches, bs, rows);
    if (!dist.isMain) {
      dispose([...local.values()]);
      return {};
    }
    const [fdGen, fidGen] = [new StatsAccumulator(), new StatsAccumulator()];
    accs.push(fdGen, fidGen);
    const hist = new Array<number>(cls?.spec.classes ?? 0).fill(0);
    let correct = 0;
    let asked = 0;
    let clipSum = 0;
    for (let b = 0; b < batches; b++) {
      const r = all.get(b)!;
      if (r.f) {
        fdGen.add(r.f);
        kept.push(r.f);
        (r.p!.data() as BigInt64Array).forEach((p, k) => {
          hist[Number(p)]! += 1;
          const want = model.askedClass(b * bs + k);
          if (want !== null) {
            asked++;
            if (Number(p) === want) correct++;
          }
        });
        r.p!.dispose();
      }
      if (r.i) {
        fidGen.add(r.i);
        r.i.dispose();
      }
      if (r.c) {
        clipSum += r.c.sum().item();
        r.c.dispose();
      }
    }
    const genSeconds = (performance.now() - t0) / 1000;

    dist.destroy();
    const result: EvalResult = {
      model: path.resolve(model.file),
      mode: model.mode,
      nfe: model.nfe,
      conditioning: model.conditioning,
      num: cfg.num,
      ref: refName,
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
        result[name] = tidy(() => frechetDistance(fdGen.stats(), fdR.stats()));
        if (floorCount >= 2) {
          result[`${name}_noise_floor`] = tidy(() => frechetDistance(floor.stats(), fdR.stats()));
          result.noise_floor_images = floorCount;
        }
        const pr = tidy(() => precisionRecall(cat(realFeatures), cat(kept), cfg.prK));
        result.precision = pr.precision;
        result.recall = pr.recall;
        dispose(realFeatures);
        result.classifier = cls.file ? path.resolve(cls.file) : null;
      }
      if (inc) result.FID = tidy(() => frechetDistance(fidGen.stats(), fidR.stats()));
    } else if (npz && inc) {
      const ref: Gaussian = { mu: npz.get('mu')!, sigma: npz.get('sigma')!, count: 0 };
      result.FID = tidy(() => frechetDistance(fidGen.stats(), ref));
      if (cls) log('note: an .npz reference holds Inception statistics only; FD in classifier features is skipped');
    }
    if (clip) {
      result.clip_score = clipSum / cfg.num;
      result.clip_model = clip.file;
    }
    if (cls) {
      const total = hist.reduce((a, v) => a + v, 0);
      result.class_fractions = hist.map((v) => v / total);
      result.class_balance_min_over_max = Math.min(...hist) / Math.max(...hist, 1);
      result.class_fraction_min = Math.min(...hist) / total;
      result.class_fraction_max = Math.max(...hist) / total;
      // the fraction of samples the classifier puts in the class they asked for (classes, or prompts' classes)
      if (asked) result.classifier_accuracy_on_samples = correct / asked;
    }
    atomicWrite(cfg.out, `${JSON.stringify(result, null, 2)}\n`, 'evaluation results');
    for (const [k, v] of Object.entries(result)) if (typeof v === 'number') log(`${k}: ${Number.isInteger(v) ? v : v.toFixed(4)}`);
    log(`wrote ${cfg.out}`);
    return result;
  } finally {
    model.dispose();
    cls?.dispose();
    inc?.dispose();
    clip?.dispose();
    for (const a of accs) a.dispose();
    dispose(kept);
    if (npz) dispose(npz);
  }
}
