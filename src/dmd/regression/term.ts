// DMD's regression term: the one-step generator's output for the noises of the teacher's pairs is
// pulled towards the teacher's ODE outputs (LPIPS in DMD, or l2/l1/pseudo-Huber). Batches are drawn
// with their own random stream (so regression does not shift the draws of the rest of an iteration).
import path from 'node:path';
import type { Tensor } from '../../tensor/tensor.js';
import { tidy } from '../../tensor/scope.js';
import type { Device, ExecutionDType } from '../../tensor/device.js';
import type { Generator } from '../../tensor/random.js';
import { LPIPS } from '../../metrics/lpips.js';
import type { ImageSpec } from '../../metrics/classifier.js';
import { PairsDataset } from './pairs.js';
import { regressionLoss, type RegressionLoss } from './losses.js';
import type { RankRandom } from '../rng.js';
import type { OneStepGenerator } from '../generator.js';

export class RegressionSetupError extends Error {
  readonly code = 'ERR_DMD_SETUP';
}

export interface RegressionSettings {
  pairs: string;
  regression: RegressionLoss;
  lpips?: string | undefined;
  lpipsResize: number;
  dtype: ExecutionDType;
}

export class RegressionTerm {
  readonly pairs: PairsDataset;
  readonly lpips: LPIPS | null;

  /**
   * Opens the pairs (checked against the teacher's shape and, when known, its SHA-256) and the LPIPS
   * weights. `pairsRng`: the batch indices' random stream; `rank`: this process's slice in the test mode.
   */
  constructor(private readonly s: RegressionSettings, teacher: { spec: ImageSpec; sha256: string | null; path: string }, private readonly pairsRng: Generator, private readonly rank: RankRandom, private readonly device: Device) {
    this.lpips = s.regression === 'lpips' ? LPIPS.load(s.lpips!, { device }) : null;
    let pairs: PairsDataset | null = null;
    try {
      pairs = new PairsDataset(s.pairs);
      checkPairsFit(pairs, s.pairs, teacher);
    } catch (e) {
      this.lpips?.dispose();
      pairs?.dispose();
      throw e;
    }
    this.pairs = pairs;
  }

  get size(): number { return this.pairs.size; }

  /** A batch of n pairs (in the test mode of multi-process runs, this process's slice of the global batch). */
  private batch(n: number): { z: Tensor; labels: Tensor | null; y: Tensor } {
    const labelDim = this.pairs.manifest.labelDim;
    if (!this.rank.sameNoise) return this.pairs.batch(n, this.pairsRng, this.device, labelDim);
    return tidy(() => {
      const b = this.pairs.batch(n * this.rank.worldSize, this.pairsRng, this.device, labelDim);
      return { z: this.rank.slice(b.z, n), labels: this.rank.slice(b.labels, n), y: this.rank.slice(b.y, n) };
    });
  }

  /** The regression loss of the generator on a batch of n pairs. */
  loss(G: OneStepGenerator, n: number): Tensor {
    return tidy(() => {
      const pb = this.batch(n);
      const x = G.forward(pb.z, pb.labels);
      return regressionLoss(this.s.regression, x, pb.y, this.lpips, { resize: this.s.lpipsResize, dtype: this.s.dtype });
    });
  }

  dispose(): void {
    this.lpips?.dispose();
    this.pairs.dispose();
  }
}

/** Pairs of another shape, class count or teacher are refused, naming both sides. */
function checkPairsFit(pairs: PairsDataset, dir: string, teacher: { spec: ImageSpec; sha256: string | null; path: string }): void {
  const m = pairs.manifest;
  const c = teacher.spec;
  const want = [c.img_channels, c.img_resolution, c.img_resolution];
  if (m.imageShape.join() !== want.join() || m.labelDim !== c.label_dim)
    throw new RegressionSetupError(`${dir}: pairs of [${m.imageShape}] with ${m.labelDim} classes do not fit the teacher ([${want}], ${c.label_dim} classes)`);
  if (teacher.sha256 && m.teacher.sha256 !== teacher.sha256)
    throw new RegressionSetupError(
      `${dir}: the pairs were made by another teacher (${path.basename(m.teacher.file)}, SHA-256 ${m.teacher.sha256.slice(0, 12)}...) than --teacher ` +
        `${path.basename(teacher.path)} (${teacher.sha256.slice(0, 12)}...); regress onto pairs of the teacher being distilled (dmd pairs --teacher ${teacher.path})`,
    );
}
