// The Fréchet distance between Gaussians fitted to features, in float64, as EDM's fid.py computes it:
// |mu_a - mu_b|^2 + tr(S_a + S_b - 2 sqrtm(S_a S_b)). tr sqrtm(S_a S_b) is taken as the sum of the
// square roots of the eigenvalues of the symmetric PSD matrix sqrt(S_a) S_b sqrt(S_a) (same spectrum),
// with tiny negative eigenvalues of near-singular covariances clamped to 0.
import type { Tensor } from '../tensor/tensor.js';
import { tidy, keep } from '../tensor/scope.js';
import { eigh, zeros } from '../tensor/create.js';
import { noGrad } from '../tensor/autograd.js';

export interface Gaussian {
  mu: Tensor;
  sigma: Tensor;
  count: number;
}

/** Mean and unbiased covariance (N - 1) of feature rows, in float64. */
export function featureStats(features: Tensor): Gaussian {
  return noGrad(() => tidy(() => {
    const f = features.to('float64');
    const n = f.shape[0]!;
    if (n < 2) throw new RangeError(`feature statistics need at least 2 samples, got ${n}`);
    const mu = f.mean(0);
    const c = f.sub(mu);
    return { mu, sigma: c.t().matmul(c).div(n - 1), count: n };
  }));
}

function sqrtPSD(s: Tensor): Tensor {
  const [l, q] = eigh(s);
  return q.mul(l.clamp(0).sqrt()).matmul(q.t());
}

export function frechetDistance(a: Gaussian, b: Gaussian): number {
  return noGrad(() => tidy(() => {
    const sa = a.sigma.to('float64');
    const sb = b.sigma.to('float64');
    const m = a.mu.to('float64').sub(b.mu.to('float64'));
    const r = sqrtPSD(sa);
    const inner = r.matmul(sb).matmul(r);
    const sym = inner.add(inner.t()).mul(0.5);
    const [ev] = eigh(sym);
    const trSqrt = ev.clamp(0).sqrt().sum().item();
    return m.square().sum().item() + sa.diagonal().sum().item() + sb.diagonal().sum().item() - 2 * trSqrt;
  }));
}

/** Streaming statistics: feed feature batches, then read mean/covariance (float64 sums). */
export class StatsAccumulator {
  private sum: Tensor | null = null;
  private outer: Tensor | null = null;
  count = 0;

  add(features: Tensor): void {
    noGrad(() => {
      const f = tidy(() => features.to({ device: 'cpu', dtype: 'float64' }));
      const d = f.shape[1]!;
      if (!this.sum) {
        this.sum = keep(zeros([d], { dtype: 'float64' }));
        this.outer = keep(zeros([d, d], { dtype: 'float64' }));
      }
      tidy(() => {
        this.sum!.add_(f.sum(0));
        this.outer!.add_(f.t().matmul(f));
      });
      this.count += f.shape[0]!;
      f.dispose();
    });
  }

  stats(): Gaussian {
    if (!this.sum || this.count < 2) throw new RangeError('need at least 2 samples for statistics');
    const n = this.count;
    return noGrad(() => tidy(() => {
      const mu = this.sum!.div(n);
      const sigma = this.outer!.sub(mu.outer(mu).mul(n)).div(n - 1);
      return { mu, sigma, count: n };
    }));
  }

  dispose(): void {
    this.sum?.dispose();
    this.outer?.dispose();
  }
}
