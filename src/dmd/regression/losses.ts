// DMD's regression loss between the one-step output G(z) and the teacher's ODE output y, per batch:
// lpips (DMD), l2, l1, or pseudo-huber (iCT: sqrt(|x - y|^2 + c^2) - c, c = 0.00054 sqrt(d)).
import type { Tensor } from '../../tensor/tensor.js';
import { tidy } from '../../tensor/scope.js';
import type { LPIPS, LPIPSOptions } from '../../metrics/lpips.js';

export const REGRESSION_LOSSES = ['lpips', 'l2', 'l1', 'pseudo-huber'] as const;
export type RegressionLoss = (typeof REGRESSION_LOSSES)[number];

export function regressionLoss(kind: RegressionLoss, x: Tensor, y: Tensor, lpips?: LPIPS | null, lo: LPIPSOptions = {}): Tensor {
  return tidy(() => {
    switch (kind) {
      case 'lpips':
        if (!lpips) throw new Error('regression loss lpips needs LPIPS weights (--lpips)');
        return lpips.distance(x, y, lo).mean();
      case 'l2':
        return x.sub(y).square().mean();
      case 'l1':
        return x.sub(y).abs().mean();
      case 'pseudo-huber': {
        const d = x.numel / x.shape[0]!;
        const c = 0.00054 * Math.sqrt(d);
        return x.sub(y).square().sum([1, 2, 3]).add(c * c).sqrt().sub(c).mean();
      }
    }
  });
}
