// The losses of DMD/DMD2 (tianweiy/DMD2 main/edm/edm_guidance.py, main/sd_guidance.py) over any
// teacher family: distribution matching, the fake score's denoising loss and the GAN terms. Noise
// levels and noise are injectable so that tests can feed reference values; scores are x0 predictions
// (score-model.ts), the real one possibly with classifier-free guidance.
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import type { Conditioning, NoiseDraw, NoiseSchedule, ScoreFn } from './score-model.js';

export type { NoiseDraw } from './score-model.js';

export interface DistributionMatchingResult {
  /** 0.5 * mean((x - stopgrad(x - grad))^2): its gradient w.r.t. x is grad / numel */
  loss: Tensor;
  /** the normalised distribution-matching gradient (pred_fake - pred_real) / mean|x - pred_real| */
  grad: Tensor;
  predReal: Tensor;
  predFake: Tensor;
  /** the noise level of each sample (EDM: sigma) */
  level: Tensor;
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

/**
 * 0.5 * mean((x - stopgrad(x - grad))^2): backpropagates grad / numel into x (the DMD surrogate loss).
 * The target is computed in the gradient's precision and cast to x's (DMD2's text-to-image code forms
 * it in float64 and casts to float32).
 */
export function dmSurrogateLoss(x: Tensor, grad: Tensor): Tensor {
  return tidy(() => {
    const target = noGrad(() => x.detach().sub(grad).to(x.dtype));
    return x.sub(target).square().mean().mul(0.5);
  });
}

/**
 * DMD's distribution-matching loss for generator output x: noise it to the drawn levels, denoise with
 * the real and the fake score (no gradient), normalise by the per-sample mean |x - pred_real|.
 */
export function distributionMatchingLoss(x: Tensor, cond: Conditioning, real: ScoreFn, fake: ScoreFn, schedule: NoiseSchedule, draw: NoiseDraw): DistributionMatchingResult {
  return tidy(() => {
    const { level, predReal, predFake } = noGrad(() => {
      const { noisy, level } = schedule.addNoise(x.detach(), draw.tIndex, draw.noise);
      return { level, predReal: real(noisy, level, cond), predFake: fake(noisy, level, cond) };
    });
    const grad = dmGradient(x, predReal, predFake);
    return { loss: dmSurrogateLoss(x, grad), grad, predReal, predFake, level };
  });
}

/**
 * The fake score's denoising loss on detached generator output at the drawn levels (DMD2 draws them
 * over all levels), in the schedule's own weighting (EDM: (1/sigma^2 + 1/sigma_data^2)-weighted).
 */
export function fakeScoreLoss(x: Tensor, cond: Conditioning, fake: ScoreFn, schedule: NoiseSchedule, draw: NoiseDraw): { loss: Tensor; level: Tensor } {
  return tidy(() => {
    const xd = x.detach();
    const { noisy, level } = schedule.addNoise(xd, draw.tIndex, draw.noise);
    const pred = fake(noisy, level, cond);
    return { loss: schedule.denoisingLoss(pred, { x: xd, noisy, level, noise: draw.noise }), level };
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
