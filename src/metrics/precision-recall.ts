// Improved precision and recall (Kynkäänniemi et al. 2019) in a feature space: each set's manifold is
// the union of balls around its points with radius the distance to the k-th nearest neighbour in the
// same set. Precision = fraction of generated points inside the real manifold (quality); recall =
// fraction of real points inside the generated manifold (coverage). float64, computed in row blocks.
import type { Tensor } from '../tensor/tensor.js';
import { tidy, keep } from '../tensor/scope.js';
import { cat } from '../tensor/create.js';
import { noGrad } from '../tensor/autograd.js';

const BLOCK = 1024;

/** Squared Euclidean distances [a rows, b rows]. */
function sqDist(a: Tensor, b: Tensor, bNorm: Tensor): Tensor {
  return tidy(() => a.square().sum(1, true).add(bNorm.unsqueeze(0)).sub(a.matmul(b.t()).mul(2)).clamp(0));
}

/** Squared distance of each row of x to its k-th nearest other row of x. */
function kthRadii(x: Tensor, k: number): Tensor {
  return tidy(() => {
    const norm = x.square().sum(1);
    const parts: Tensor[] = [];
    for (let i = 0; i < x.shape[0]!; i += BLOCK) {
      const d = sqDist(x.narrow(0, i, Math.min(BLOCK, x.shape[0]! - i)), x, norm);
      // the smallest k+1 include the point itself (distance 0)
      parts.push(d.topk(k + 1, 1, false)[0]!.select(1, k));
    }
    return cat(parts);
  });
}

/** Fraction of rows of `query` within some ball (center row of `ref`, squared radius `radii`). */
function coverage(query: Tensor, ref: Tensor, radii: Tensor): number {
  return tidy(() => {
    const norm = ref.square().sum(1);
    let inside = 0;
    for (let i = 0; i < query.shape[0]!; i += BLOCK) {
      const d = sqDist(query.narrow(0, i, Math.min(BLOCK, query.shape[0]! - i)), ref, norm);
      inside += d.le(radii.unsqueeze(0)).any(1).sum().item();
    }
    return inside / query.shape[0]!;
  });
}

export function precisionRecall(real: Tensor, generated: Tensor, k = 3): { precision: number; recall: number } {
  return noGrad(() =>
    tidy(() => {
      const r = keep(real.to({ device: 'cpu', dtype: 'float64' }));
      const g = keep(generated.to({ device: 'cpu', dtype: 'float64' }));
      if (r.shape[0]! <= k || g.shape[0]! <= k) throw new RangeError(`precision/recall with k=${k} need more than ${k} real and generated samples`);
      const precision = coverage(g, r, kthRadii(r, k));
      const recall = coverage(r, g, kthRadii(g, k));
      r.dispose();
      g.dispose();
      return { precision, recall };
    }),
  );
}
