// DMD's regression term: the one-step generator's output for the noises (and classes or prompts) of
// the teacher's pairs is pulled towards the teacher's ODE outputs: LPIPS on images in DMD (for latent
// teachers, on the VAE's decoding of both, with gradients through the decoder), or l2/l1/pseudo-Huber
// on the samples themselves (latents for SD). Batches are drawn with their own random stream (so
// regression does not shift the draws of the rest of an iteration).
import path from 'node:path';
import type { Tensor } from '../../tensor/tensor.js';
import { tidy } from '../../tensor/scope.js';
import { noGrad } from '../../tensor/autograd.js';
import type { Device, ExecutionDType } from '../../tensor/device.js';
import type { Generator } from '../../tensor/random.js';
import { LPIPS } from '../../metrics/lpips.js';
import { PairsDataset } from './pairs.js';
import { regressionLoss, type RegressionLoss } from './losses.js';
import type { RankRandom } from '../rng.js';
import type { OneStepGenerator } from '../generator.js';
import type { Conditioning } from '../score-model.js';

/** What the pairs must have been made for: the teacher's file, sample shape, classes and prompts. */
export interface PairsTarget {
  path: string;
  /** SHA-256 of the teacher file (null for a teacher given in memory: not checked) */
  sha256: string | null;
  sampleShape: number[];
  conditionDim: number;
  /** the run's prompts (text-conditioned teachers) */
  prompts?: { file: string; sha256: string; count: number } | undefined;
}

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
  constructor(private readonly s: RegressionSettings, teacher: PairsTarget, private readonly pairsRng: Generator, private readonly rank: RankRandom, private readonly device: Device) {
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
  private batch(n: number): { z: Tensor; index: Tensor | null; y: Tensor } {
    if (!this.rank.sameNoise) return this.pairs.batch(n, this.pairsRng, this.device);
    return tidy(() => {
      const b = this.pairs.batch(n * this.rank.worldSize, this.pairsRng, this.device);
      return { z: this.rank.slice(b.z, n), index: this.rank.slice(b.index, n), y: this.rank.slice(b.y, n) };
    });
  }

  /** The regression loss of the generator on a batch of n pairs, with the generator's outputs x and their conditions. */
  loss(G: OneStepGenerator, n: number): { loss: Tensor; x: Tensor; cond: Conditioning } {
    return tidy(() => {
      const pb = this.batch(n);
      const cond = G.G.conditionsOf(pb.index);
      const x = G.forward(pb.z, cond);
      if (this.s.regression !== 'lpips') return { loss: regressionLoss(this.s.regression, x, pb.y), x, cond };
      const y = noGrad(() => G.G.differentiableImages(pb.y));
      return { loss: regressionLoss('lpips', G.G.differentiableImages(x), y, this.lpips, { resize: this.s.lpipsResize, dtype: this.s.dtype }), x, cond };
    });
  }

  dispose(): void {
    this.lpips?.dispose();
    this.pairs.dispose();
  }
}

/** Pairs of another shape, class count, teacher or prompt file are refused, naming both sides. */
function checkPairsFit(pairs: PairsDataset, dir: string, teacher: PairsTarget): void {
  const m = pairs.manifest;
  const want = teacher.sampleShape;
  if (m.imageShape.join() !== want.join() || m.labelDim !== teacher.conditionDim)
    throw new RegressionSetupError(`${dir}: pairs of [${m.imageShape}] with ${m.labelDim} classes do not fit the teacher ([${want}], ${teacher.conditionDim} classes)`);
  if (teacher.sha256 && m.teacher.sha256 !== teacher.sha256)
    throw new RegressionSetupError(
      `${dir}: the pairs were made by another teacher (${path.basename(m.teacher.file)}, SHA-256 ${m.teacher.sha256.slice(0, 12)}...) than --teacher ` +
        `${path.basename(teacher.path)} (${teacher.sha256.slice(0, 12)}...); regress onto pairs of the teacher being distilled (dmd pairs --teacher ${teacher.path})`,
    );
  const p = teacher.prompts;
  if (p && !m.prompts) throw new RegressionSetupError(`${dir}: the pairs have no prompts, but the teacher is text-conditioned; make them with dmd pairs --teacher ${teacher.path} --prompts ${p.file}`);
  if (!p && m.prompts) throw new RegressionSetupError(`${dir}: the pairs were made with prompts (${path.basename(m.prompts.file)}), but this run has none`);
  if (p && m.prompts && m.prompts.sha256 !== p.sha256)
    throw new RegressionSetupError(
      `${dir}: the pairs were made with another prompt file (${path.basename(m.prompts.file)}, ${m.prompts.count} prompts, SHA-256 ${m.prompts.sha256.slice(0, 12)}...) than --prompts ` +
        `${path.basename(p.file)} (${p.count} prompts, ${p.sha256.slice(0, 12)}...): their prompt indices would mean other prompts; make pairs with --prompts ${p.file}`,
    );
}
