// A small, fixed evaluation used while training (--eval-every): FD-<classifier> and the classifier's
// accuracy on intended classes, for the same seeded noises and balanced labels each time, against
// reference statistics computed once. It tracks progress; `dmd eval` on more samples gives the figure
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
}

export class FDProbe {
  private constructor(
    private readonly cls: FeatureClassifier,
    private readonly ref: Gaussian,
    private readonly batches: { z: Tensor; labels: Tensor | null; classes: number[] }[],
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
      const batches = [];
      for (let b = 0; b < o.num; b += bs) {
        const n = Math.min(bs, o.num - b);
        const classes = balancedLabels(b, n, c.label_dim);
        batches.push(tidy(() => ({
          z: keep(randn([n, c.img_channels, c.img_resolution, c.img_resolution], { generator: g }).to(o.device)),
          labels: c.label_dim ? keep(oneHot(tensor(classes, { dtype: 'int64' }), c.label_dim).to(o.device)) : null,
          classes,
        })));
      }
      return new FDProbe(cls, ref, batches);
    } catch (e) {
      cls.dispose();
      throw e;
    } finally {
      acc.dispose();
    }
  }

  /** FD and accuracy of sample(z, labels) (images in [-1, 1]) on the fixed inputs. */
  run(sample: (z: Tensor, labels: Tensor | null) => Tensor): Record<string, number> {
    const acc = new StatsAccumulator();
    let correct = 0;
    let total = 0;
    try {
      for (const b of this.batches) {
        noGrad(() => tidy(() => {
          const x = sample(b.z, b.labels).clamp(-1, 1);
          acc.add(this.cls.features(x));
          const pred = this.cls.logits(x).argmax(1).to('cpu').data() as BigInt64Array;
          pred.forEach((p, k) => { if (Number(p) === b.classes[k]) correct++; });
          total += pred.length;
        }));
      }
      const name = `FD-${this.cls.spec.name}`;
      return { [name]: tidy(() => frechetDistance(acc.stats(), this.ref)), eval_accuracy: correct / total };
    } finally {
      acc.dispose();
    }
  }

  dispose(): void {
    this.cls.dispose();
    dispose([this.ref, this.batches]);
  }
}
