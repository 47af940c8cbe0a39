// The losses of DMD/DMD2 (tianweiy/DMD2 main/edm/edm_guidance.py): distribution matching, the fake
// score's denoising loss and the GAN terms, with injectable noise levels and noise so that tests can
// feed reference values. Scores are denoisers (edm/guidance.ts: the real one may apply guidance).
import { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import type { Denoiser } from '../edm/guidance.js';

export interface NoiseDraw {
  /** indices into the Karras table, int64 [N] */
  tIndex: Tensor;
  /** standard normal noise shaped like x */
  noise: Tensor;
}

export interface DistributionMatchingResult {
  /** 0.5 * mean((x - stopgrad(x - grad))^2): its gradient w.r.t. x is grad / numel */
  loss: Tensor;
  /** the normalised distribution-matching gradient (pred_fake - pred_real) / mean|x - pred_real| */
  grad: Tensor;
  predReal: Tensor;
  predFake: Tensor;
  sigma: Tensor;
}

/**
 * The normalised distribution-matching gradient: ((x - pred_real) - (x - pred_fake)) / mean|x - pred_real|
 * per sample, NaN/Inf replaced (DMD2's nan_to_num). No autograd history.
 */
export function dmGradient(x: Tensor, predReal: Tensor, predFake: Tensor): Tensor {
  return noGrad(() =>
    tidy(() => {
      const xd = x.detach();
      const pReal = xd.sub(predReal);
      const pFake = xd.sub(predFake);
      const weight = pReal.abs().mean([1, 2, 3], true);
      return pReal.sub(pFake).div(weight).nanToNum();
    }),
  );
}

/** 0.5 * mean((x - stopgrad(x - grad))^2): backpropagates grad / numel into x (the DMD surrogate loss). */
export function dmSurrogateLoss(x: Tensor, grad: Tensor): Tensor {
  return tidy(() => {
    const target = noGrad(() => x.detach().sub(grad));
    return x.sub(target).square().mean().mul(0.5);
  });
}

/**
 * DMD's distribution-matching loss for generator output x: noise to sigma = table[tIndex], denoise
 * with the real and fake scores (no grad), normalise by the per-sample mean |x - pred_real|.
 */
export function distributionMatchingLoss(x: Tensor, labels: Tensor | null, real: Denoiser, fake: Denoiser, table: Tensor, draw: NoiseDraw): DistributionMatchingResult {
  return tidy(() => {
    const { sigma, predReal, predFake } = noGrad(() => {
      const sigma = table.indexSelect(0, draw.tIndex);
      const noisy = x.detach().add(draw.noise.mul(sigma.reshape([-1, 1, 1, 1])));
      return { sigma, predReal: real(noisy, sigma, labels), predFake: fake(noisy, sigma, labels) };
    });
    const grad = dmGradient(x, predReal, predFake);
    return { loss: dmSurrogateLoss(x, grad), grad, predReal, predFake, sigma };
  });
}

/**
 * The fake score's denoising loss on detached generator output: mean((1/sigma^2 + 1/sigma_data^2) *
 * (D_fake(x + sigma n) - x)^2) with sigma = table[tIndex] (DMD2 draws tIndex over all levels).
 */
export function fakeScoreLoss(x: Tensor, labels: Tensor | null, fake: Denoiser, table: Tensor, draw: NoiseDraw, sigmaData: number): { loss: Tensor; sigma: Tensor } {
  return tidy(() => {
    const xd = x.detach();
    const sigma = table.indexSelect(0, draw.tIndex);
    const s4 = sigma.reshape([-1, 1, 1, 1]);
    const noisy = xd.add(draw.noise.mul(s4));
    const pred = fake(noisy, sigma, labels);
    const weight = s4.pow(-2).add(1 / sigmaData ** 2);
    const loss = weight.mul(pred.sub(xd).square()).mean();
    return { loss, sigma };
  });
}

/** DMD2's generator GAN loss: softplus(-logits) of generated images, averaged (non-saturating). */
export function ganGeneratorLoss(fakeLogits: Tensor): Tensor {
  return tidy(() => fakeLogits.neg().softplus().mean());
}

/** DMD2's classifier-head loss: softplus(logits_fake) + softplus(-logits_real), averaged. */
export function ganHeadLoss(realLogits: Tensor, fakeLogits: Tensor): Tensor {
  return tidy(() => fakeLogits.softplus().add(realLogits.neg().softplus()).mean());
}
