// How each fixture kind is checked: run our implementation on the case's inputs and pair every
// output with its expected tensor. Pass criterion (fixtures README): max|got - expected| <=
// rtol * max|expected| + 1e-12, per expected tensor.
import { EDMNetwork, type ExecutionDType } from '../../src/edm/network.js';
import { noGrad, tidy, type Tensor, type Device } from '../../src/tensor/index.js';
import type { CaseTensors, FixtureCase } from './fixtures.js';

export interface Comparison {
  name: string;
  got: Tensor;
  expected: Tensor;
}

export interface CheckContext {
  device: Device;
  dtype: ExecutionDType;
}

export type Checker = (c: FixtureCase, t: CaseTensors, ctx: CheckContext) => Comparison[];

/** An EDM network from the case's config and weights (prefix weights/, real/ or fake/). */
export function caseNetwork(c: FixtureCase, t: CaseTensors, prefix: string, ctx: CheckContext): EDMNetwork {
  const net = EDMNetwork.create(c.config as Record<string, unknown> as never);
  net.loadStateDict(t.group(prefix));
  net.eval();
  if (ctx.device !== 'cpu') net.to({ device: ctx.device });
  return net;
}

function labelsOrNull(labels: Tensor): Tensor | null {
  return labels.numel === 0 ? null : labels;
}

const on = (x: Tensor, ctx: CheckContext) => (ctx.device === 'cpu' ? x : x.to(ctx.device));

export const CHECKERS: Record<string, Checker> = {
  'edm-forward': (c, t, ctx) => {
    const net = caseNetwork(c, t, 'weights/', ctx);
    try {
      return noGrad(() => {
        const x = on(t.get('input/x'), ctx);
        const sigma = on(t.get('input/sigma'), ctx);
        const labels = labelsOrNull(on(t.get('input/class_labels'), ctx));
        const out: Comparison[] = [{ name: 'D', got: net.forward(x, sigma, { labels, dtype: ctx.dtype }), expected: t.get('expected/D') }];
        if (t.has('expected/bottleneck'))
          out.push({ name: 'bottleneck', got: net.bottleneck(x, sigma, { labels, dtype: ctx.dtype }), expected: t.get('expected/bottleneck') });
        return out;
      });
    } finally {
      net.dispose();
    }
  },
};

export interface Verdict {
  pass: boolean;
  /** the worst expected tensor (largest err / tol) */
  worst: string;
  maxAbsErr: number;
  tol: number;
}

export function judge(comps: readonly Comparison[], rtol: number): Verdict {
  let best: Verdict = { pass: true, worst: '', maxAbsErr: 0, tol: Infinity };
  let worstRatio = -1;
  for (const { name, got, expected } of comps) {
    const [err, scale] = tidy(() => {
      const g = got.to({ device: 'cpu', dtype: 'float64' });
      const e = expected.to({ dtype: 'float64' });
      if (g.shape.join() !== e.shape.join()) return [Infinity, 0];
      const d = g.sub(e).abs().max().item();
      return [Number.isNaN(d) ? Infinity : d, e.abs().max().item()];
    });
    const tol = rtol * scale + 1e-12;
    const ratio = err / tol;
    if (ratio > worstRatio) {
      worstRatio = ratio;
      best = { pass: err <= tol, worst: name, maxAbsErr: err, tol };
    }
  }
  return { ...best, pass: worstRatio <= 1 };
}
