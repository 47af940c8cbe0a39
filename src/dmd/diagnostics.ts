// Diagnostics of the distribution-matching term during a DMD run, on a fixed probe batch of teacher
// pairs (their noises and conditions, with the teacher's ODE outputs as regression targets):
// - how well the fake score tracks the generator: its denoising loss on fresh generator samples against
//   the teacher's on the same noised samples, per noise level (below 1: the fake score has learned the
//   generator's distribution better than the teacher describes it);
// - how the distribution-matching gradient relates to the regression gradient, both as back-propagated
//   into the samples with their weights in the run: cosine (per sample, averaged) and norm ratio, per
//   noise level; and in the generator's weights (what the optimizer sees), with the levels drawn as
//   training draws them.
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { noGrad, autograd } from '../tensor/autograd.js';
import { Generator, randint, randn } from '../tensor/random.js';
import { cat, full } from '../tensor/create.js';
import { dmGradient, dmSurrogateLoss } from './losses.js';
import { regressionLoss, type RegressionLoss } from './regression/losses.js';
import type { Critic } from './critic.js';
import type { OneStepGenerator } from './generator.js';
import type { PairsDataset } from './regression/pairs.js';
import type { NoiseSchedule } from './score-model.js';

export interface DMDiagnosticsSettings {
  lambdaDm: number;
  lambdaReg: number;
  regression: RegressionLoss;
  minStepPercent: number;
  maxStepPercent: number;
}

export interface LevelDiagnostics {
  /** table index and level (EDM: sigma) */
  index: number;
  level: number;
  /** the fake score's denoising loss on the probe's generator samples, over the teacher's */
  fakeOverReal: number;
  /** cosine of the weighted DM and regression gradients w.r.t. the samples, per sample, averaged */
  cosine: number;
  /** |DM gradient| / |regression gradient| w.r.t. the samples (batch norms, run weights included) */
  normRatio: number;
}

export interface DMDiagnostics {
  levels: LevelDiagnostics[];
  /** cosine and norm ratio of the two gradients in the generator's weights (levels drawn as in training) */
  weightsCosine: number;
  weightsNormRatio: number;
}

/**
 * Measures the diagnostics on `n` probe pairs (drawn with `seed`, the same every call) at `levels` table
 * indices spread evenly over the distribution-matching range. A run without regression is compared with
 * the regression gradient it would have at weight `lambdaReg`. Changes no weights.
 */
export function dmDiagnostics(
  parts: { generator: OneStepGenerator; critic: Critic; pairs: PairsDataset; schedule: NoiseSchedule },
  s: DMDiagnosticsSettings,
  o: { n?: number; levels?: number; seed?: number } = {},
): DMDiagnostics {
  const { generator, critic, pairs, schedule } = parts;
  const fakeScore = critic.fakeScore;
  if (!fakeScore) throw new Error('dmDiagnostics: the run has no fake score (no distribution matching)');
  if (s.regression === 'lpips') throw new Error('dmDiagnostics: the pixel-space comparison needs a pixel-space regression loss (l2, l1, pseudo-huber)');
  const n = o.n ?? 64;
  const K = o.levels ?? 6;
  const rng = Generator.create(generator.G.device, o.seed ?? 1234);
  const T = schedule.numLevels;
  const lo = Math.floor(s.minStepPercent * T);
  const hi = Math.min(Math.floor(s.maxStepPercent * T), T - 1);
  const indices = Array.from({ length: K }, (_, k) => Math.round(lo + ((hi - lo) * k) / Math.max(K - 1, 1)));
  const levelsTable = schedule.levels.toFloat32Array();
  const pairsRng = Generator.create('cpu', o.seed ?? 1234);
  return tidy(() => {
    const pb = pairs.batch(n, pairsRng, generator.G.device);
    const cond = generator.G.conditionsOf(pb.index);
    const numel = pb.y.numel;
    // the regression gradient w.r.t. the samples, with its weight
    const x = noGrad(() => generator.forward(pb.z, cond)).detach().requiresGrad_(true);
    const [rg] = autograd.grad(regressionLoss(s.regression, x, pb.y).mul(s.lambdaReg), x);
    const reg = rg!.detach();
    const levels: LevelDiagnostics[] = indices.map((index) =>
      tidy(() => {
        const noise = randn(x.shape, { generator: rng, device: x.device });
        const { noisy, level } = schedule.addNoise(x.detach(), full([n], index, { dtype: 'int64', device: x.device }), noise);
        const { predReal, predFake } = noGrad(() => ({ predReal: critic.realScore(noisy, level, cond), predFake: fakeScore(noisy, level, cond) }));
        const b = { x: x.detach(), noisy, level, noise };
        const fakeOverReal = schedule.denoisingLoss(predFake, b).item() / schedule.denoisingLoss(predReal, b).item();
        const dm = dmGradient(x, predReal, predFake).mul(s.lambdaDm / numel);
        return { index, level: levelsTable[index]!, fakeOverReal, ...compareSampleGradients(dm, reg) };
      }),
    );
    // in the generator's weights: one forward, the two terms back-propagated separately
    const params = generator.parameters();
    const xg = generator.forward(pb.z, cond);
    const tIndex = randint(lo, hi + 1, [n], { generator: rng, device: x.device });
    const noise = randn(x.shape, { generator: rng, device: x.device });
    const dmGrad = noGrad(() => {
      const { noisy, level } = schedule.addNoise(xg.detach(), tIndex, noise);
      return dmGradient(xg, critic.realScore(noisy, level, cond), fakeScore(noisy, level, cond));
    });
    const gd = autograd.grad(dmSurrogateLoss(xg, dmGrad).mul(s.lambdaDm), params, { retainGraph: true, allowUnused: true });
    const gr = autograd.grad(regressionLoss(s.regression, xg, pb.y).mul(s.lambdaReg), params, { allowUnused: true });
    const w = compareWeightGradients(gd, gr, params);
    return { levels, weightsCosine: w.cosine, weightsNormRatio: w.normRatio };
  });
}

/**
 * Cosine and norm ratio |a| / |b| of two gradients of the same parameters, each taken as one flat vector
 * (a parameter a term does not reach, null, counts as zeros).
 */
export function compareWeightGradients(a: (Tensor | null)[], b: (Tensor | null)[], params: Tensor[]): { cosine: number; normRatio: number } {
  return tidy(() => {
    const flat = (gs: (Tensor | null)[]) => cat(gs.map((g, i) => (g ?? params[i]!.zerosLike()).reshape([-1])));
    const [u, v] = [flat(a), flat(b)];
    const [dot, nu, nv] = [u.mul(v).sum().item(), u.square().sum().item(), v.square().sum().item()];
    return { cosine: dot / Math.sqrt(nu * nv + 1e-30), normRatio: Math.sqrt(nu / (nv + 1e-30)) };
  });
}

/** Per-sample cosine (averaged) and batch norm ratio |a| / |b| of two gradients shaped like the samples. */
export function compareSampleGradients(a: Tensor, b: Tensor): { cosine: number; normRatio: number } {
  return tidy(() => {
    const dims = a.shape.slice(1).map((_, i) => i + 1);
    const cos = a.mul(b).sum(dims).div(a.square().sum(dims).sqrt().mul(b.square().sum(dims).sqrt()).add(1e-30));
    return { cosine: cos.mean().item(), normRatio: a.norm().item() / Math.max(b.norm().item(), 1e-30) };
  });
}
