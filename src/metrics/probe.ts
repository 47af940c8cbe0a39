// A small, fixed evaluation used while training (--eval-every): FD-<classifier> and the classifier's
// accuracy on intended classes, for the same seeded noises and conditioning each time (balanced labels
// for class-conditional models, cycled prompts for text-to-image ones), against reference statistics
// computed once. It tracks progress; `dmd eval` on more samples gives the figure
// to report.
import type { Tensor } from '../tensor/tensor.js';
import { tidy, keep, dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { randn, Generator } from '../tensor/random.js';
import { tensor } from '../tensor/create.js';
import type { Device } from '../tensor/device.js';
import { oneHot } from '../nn/functional.js';
import { openDataset } from '../data/sources.js';
import { evaluationClassifier, ClassifierError, type FeatureClassifier, type ImageSpec } from './classifier.js';
import { StatsAccumulator, frechetDistance, type Gaussian } from './frechet.js';
import { datasetFeatures } from './evaluate.js';
import { balancedLabels } from './eval-samplers.js';

export interface ProbeOptions {
  classifier?: string | undefined;
  /** reference dataset */
  ref: string;
  /** reference images used (default 10000) */
  refNum?: number;
  /** generated samples per evaluation */
  num: number;
  seed: number;
  device: Device;
  /** the generated images: channels, resolution, classes */
  config: ImageSpec;
  batchSize?: number;
  /**
   * The fixed inputs of samples [first, first + n): the noise, what the sampler takes beside it (kept
   * for every evaluation) and the class each sample asks for (null: none, left out of the accuracy).
   * Default: pixel noise of `config` and balanced one-hot labels.
   */
  inputs?: (first: number, n: number, g: Generator) => ProbeInputs;
}

export interface ProbeInputs {
  z: Tensor;
  cond: Tensor | null;
  classes: (number | null)[];
}

/** EDM's inputs: pixel noise and balanced one-hot labels (for class-conditional models). */
function pixelInputs(c: ImageSpec, device: Device): (first: number, n: number, g: Generator) => ProbeInputs {
  return (first, n, g) => {
    const classes = balancedLabels(first, n, c.label_dim);
    return {
      z: randn([n, c.img_channels, c.img_resolution, c.img_resolution], { generator: g }).to(device),
      cond: c.label_dim ? oneHot(tensor(classes, { dtype: 'int64' }), c.label_dim).to(device) : null,
      classes: c.label_dim ? classes : classes.map(() => null),
    };
  };
}

export class FDProbe {
  private constructor(
    private readonly cls: FeatureClassifier,
    private readonly ref: Gaussian,
    private readonly batches: ProbeInputs[],
  ) {}

  static create(o: ProbeOptions): FDProbe {
    const c = o.config;
    const cls = evaluationClassifier(o.classifier, c, o.device);
    if (!cls) throw new ClassifierError(`--eval-every needs an evaluation classifier for ${c.img_channels}x${c.img_resolution}x${c.img_resolution} images: pass --classifier (made with 'dmd classifier')`);
    const acc = new StatsAccumulator();
    try {
      const src = openDataset(o.ref);
      const bs = o.batchSize ?? 250;
      datasetFeatures(src, { first: 0, count: Math.min(src.size, o.refNum ?? 10000), batchSize: bs, device: o.device, resolution: c.img_resolution, channels: c.img_channels }, (x) => acc.add(cls.features(x)));
      const ref = acc.stats();
      const g = Generator.create('cpu', o.seed);
      const inputs = o.inputs ?? pixelInputs(c, o.device);
      const batches: ProbeInputs[] = [];
      for (let b = 0; b < o.num; b += bs) {
        batches.push(tidy(() => {
          const x = inputs(b, Math.min(bs, o.num - b), g);
          return { z: keep(x.z), cond: x.cond && keep(x.cond), classes: x.classes };
        }));
      }
      return new FDProbe(cls, ref, batches);
    } catch (e) {
      cls.dispose();
      throw e;
    } finally {
      acc.dispose();
    }
  }

  /** FD, and the accuracy when samples ask for classes, of sample(z, cond) (images in [-1, 1]) on the fixed inputs. */
  run(sample: (z: Tensor, cond: Tensor | null) => Tensor): Record<string, number> {
    const acc = new StatsAccumulator();
    let correct = 0;
    let total = 0;
    try {
      for (const b of this.batches) {
        noGrad(() => tidy(() => {
          const x = sample(b.z, b.cond).clamp(-1, 1);
          acc.add(this.cls.features(x));
          if (b.classes.every((c) => c === null)) return;
          const pred = this.cls.logits(x).argmax(1).to('cpu').data() as BigInt64Array;
          pred.forEach((p, k) => {
            if (b.classes[k] === null) return;
            total++;
            if (Number(p) === b.classes[k]) correct++;
          });
        }));
      }
      const name = `FD-${this.cls.spec.name}`;
      return { [name]: tidy(() => frechetDistance(acc.stats(), this.ref)), ...(total && { eval_accuracy: correct / total }) };
    } finally {
      acc.dispose();
    }
  }

  dispose(): void {
    this.cls.dispose();
    dispose([this.ref, this.batches.map((b) => [b.z, b.cond])]);
  }
}
