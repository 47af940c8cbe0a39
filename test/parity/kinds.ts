// How each fixture kind is checked: run our implementation on the case's inputs and pair every
// output with its expected tensor. Pass criterion (fixtures README): max|got - expected| <=
// rtol * max|expected| + 1e-12, per expected tensor.
import { EDMNetwork, type ExecutionDType } from '../../src/edm/network.js';
import { noGrad, tidy, tensor, type Tensor, type Device } from '../../src/tensor/index.js';
import { sampleEDM } from '../../src/edm/sampler.js';
import { karrasTable } from '../../src/edm/sigmas.js';
import { LPIPS } from '../../src/metrics/lpips.js';
import { featureStats, frechetDistance } from '../../src/metrics/frechet.js';
import { fromArray } from '../../src/tensor/index.js';
import { distributionMatchingLoss, dmGradient, dmSurrogateLoss, fakeScoreLoss } from '../../src/dmd/losses.js';
import { denoiser } from '../../src/edm/guidance.js';
import { EDMNoiseSchedule } from '../../src/dmd/models/edm.js';
import type { CaseTensors, FixtureCase } from './fixtures.js';
import path from 'node:path';
import { SDUNet } from '../../src/sd/unet.js';
import { AutoencoderKL } from '../../src/sd/vae.js';
import { CLIPTextEncoder } from '../../src/sd/clip.js';
import { CLIPTokenizer } from '../../src/sd/tokenizer.js';
import { alphasCumprod } from '../../src/sd/schedule.js';
import { ddimSample } from '../../src/sd/sampler.js';
import { SDScoreModel } from '../../src/dmd/models/sd.js';

export interface Comparison {
  name: string;
  got: Tensor;
  expected: Tensor;
}

export interface CheckContext {
  device: Device;
  dtype: ExecutionDType;
  /** the fixture directory (for files a case names, e.g. a tokenizer vocabulary) */
  dir?: string;
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

CHECKERS['heun-sampler'] = (c, t, ctx) => {
  const net = caseNetwork(c, t, 'weights/', ctx);
  try {
    const r = sampleEDM(net, on(t.get('input/z'), ctx), labelsOrNull(on(t.get('input/class_labels'), ctx)), {
      numSteps: c.num_steps as number,
      sigmaMin: c.sigma_min as number,
      sigmaMax: c.sigma_max as number,
      rho: c.rho as number,
      dtype: ctx.dtype,
    });
    if (c.nfe !== undefined && r.nfe !== c.nfe) throw new Error(`NFE ${r.nfe}, expected ${String(c.nfe)}`);
    return [
      { name: 't_steps', got: tensor(r.tSteps, { dtype: 'float64' }), expected: t.get('expected/t_steps') },
      { name: 'x', got: r.x, expected: t.get('expected/x') },
    ];
  } finally {
    net.dispose();
  }
};

// The chain is checked stage by stage: the scores' predictions end to end from the injected noise
// levels and noise; the distribution-matching gradient, surrogate loss and d loss/dx from the
// reference's own x, pred_real and pred_fake. (Chaining them would divide float32 rounding of the
// predictions by the per-sample weight mean|x - pred_real|, 0.07 at sigma 0.085: a one-ulp difference
// in pred_real becomes 1.5e-4 of dm_grad, which PyTorch itself shows across builds.)
CHECKERS['dmd-losses'] = (c, t, ctx) => {
  const real = caseNetwork(c, t, 'real/', ctx);
  const fake = caseNetwork(c, t, 'fake/', ctx);
  try {
    const sigmaData = ((c.config as { sigma_data?: number } | undefined)?.sigma_data) ?? 0.5;
    const table = karrasTable(c.num_train_timesteps as number, { sigmaMin: c.sigma_min as number, sigmaMax: c.sigma_max as number, rho: c.rho as number, device: ctx.device });
    const x = on(t.get('input/x'), ctx);
    const labels = labelsOrNull(on(t.get('input/class_labels'), ctx));
    const R = denoiser(real, { dtype: ctx.dtype });
    const Fk = denoiser(fake, { dtype: ctx.dtype });
    const schedule = new EDMNoiseSchedule({ numTrainTimesteps: c.num_train_timesteps as number, sigmaMin: c.sigma_min as number, sigmaMax: c.sigma_max as number, rho: c.rho as number }, ctx.device, sigmaData);
    const dm = distributionMatchingLoss(x, labels, R, Fk, schedule, { tIndex: on(t.get('input/dm_t_index'), ctx), noise: on(t.get('input/dm_noise'), ctx) });
    const xr = x.detach().requiresGrad_();
    const grad = dmGradient(xr, on(t.get('expected/pred_real'), ctx), on(t.get('expected/pred_fake'), ctx));
    const loss = dmSurrogateLoss(xr, grad);
    loss.backward();
    const fl = noGrad(() => fakeScoreLoss(x, labels, Fk, schedule, { tIndex: on(t.get('input/fake_t_index'), ctx), noise: on(t.get('input/fake_noise'), ctx) }));
    return [
      { name: 'karras_sigmas', got: table, expected: t.get('expected/karras_sigmas') },
      { name: 'pred_real', got: dm.predReal, expected: t.get('expected/pred_real') },
      { name: 'pred_fake', got: dm.predFake, expected: t.get('expected/pred_fake') },
      { name: 'dm_grad', got: grad, expected: t.get('expected/dm_grad') },
      { name: 'dm_loss', got: loss.reshape([1]), expected: t.get('expected/dm_loss') },
      { name: 'dm_x_grad', got: xr.grad!, expected: t.get('expected/dm_x_grad') },
      { name: 'fake_loss', got: fl.loss.reshape([1]), expected: t.get('expected/fake_loss') },
    ];
  } finally {
    real.dispose();
    fake.dispose();
  }
};

interface FormulaWeight {
  name: string;
  shape: number[];
  seed: number;
  scale: number;
  offset: number;
}

/** The closed-form weights of an lpips-vgg case: float32(scale * (sin(0.61803398875 i + seed) + offset)), in float64. */
export function formulaWeights(ws: readonly FormulaWeight[]): Map<string, Tensor> {
  const m = new Map<string, Tensor>();
  for (const w of ws) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = w.scale * (Math.sin(0.61803398875 * i + w.seed) + w.offset);
    m.set(w.name, fromArray(v, w.shape));
  }
  return m;
}

CHECKERS['lpips-vgg'] = (c, t, ctx) => {
  const net = LPIPS.empty();
  try {
    noGrad(() => net.loadStateDict(formulaWeights(c.weights as FormulaWeight[])));
    net.eval();
    if (ctx.device !== 'cpu') net.to({ device: ctx.device });
    const d = noGrad(() => net.distance(on(t.get('input/x0'), ctx), on(t.get('input/x1'), ctx), { resize: (c.resize as number | null) ?? 0, dtype: ctx.dtype }));
    return [{ name: 'distance', got: d, expected: t.get('expected/distance') }];
  } finally {
    net.dispose();
  }
};

CHECKERS['frechet-distance'] = (_c, t) => {
  const a = featureStats(t.get('input/features_a'));
  const b = featureStats(t.get('input/features_b'));
  return [
    { name: 'mu_a', got: a.mu, expected: t.get('expected/mu_a') },
    { name: 'sigma_a', got: a.sigma, expected: t.get('expected/sigma_a') },
    { name: 'fd', got: tensor([frechetDistance(a, b)], { dtype: 'float64' }), expected: t.get('expected/fd') },
  ];
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

// ---- Stable Diffusion v1 (test/fixtures/sd) ---------------------------------------------------------------

/** The case's weights with the SD v1 single-file prefix (key_prefix) removed. */
function sdWeights(c: FixtureCase, t: CaseTensors, group = 'weights/', prefix = c.key_prefix as string): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, v] of t.group(group)) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}

function sdUnet(config: unknown, weights: Map<string, Tensor>, ctx: CheckContext): SDUNet {
  const net = SDUNet.create(config as never);
  noGrad(() => net.loadStateDict(weights));
  net.eval();
  if (ctx.device !== 'cpu') net.to({ device: ctx.device });
  return net;
}

CHECKERS['sd-unet-forward'] = (c, t, ctx) => {
  const net = sdUnet(c.config, sdWeights(c, t), ctx);
  try {
    return noGrad(() => {
      const { eps, mid } = net.forwardWithMiddle(on(t.get('input/x'), ctx), on(t.get('input/timesteps'), ctx), on(t.get('input/context'), ctx), { dtype: ctx.dtype });
      return [{ name: 'eps', got: eps, expected: t.get('expected/eps') }, { name: 'mid', got: mid, expected: t.get('expected/mid') }];
    });
  } finally {
    net.dispose();
  }
};

CHECKERS['sd-vae'] = (c, t, ctx) => {
  const vae = AutoencoderKL.create(c.config as never);
  try {
    noGrad(() => vae.loadStateDict(sdWeights(c, t)));
    vae.eval();
    if (ctx.device !== 'cpu') vae.to({ device: ctx.device });
    return noGrad(() => {
      const p = vae.encode(on(t.get('input/image'), ctx), { dtype: ctx.dtype });
      return [
        { name: 'moments', got: p.moments, expected: t.get('expected/moments') },
        { name: 'mean', got: p.mean, expected: t.get('expected/mean') },
        { name: 'logvar', got: p.logvar, expected: t.get('expected/logvar') },
        { name: 'sample', got: AutoencoderKL.sample(p, on(t.get('input/posterior_noise'), ctx)), expected: t.get('expected/sample') },
        { name: 'decoded', got: vae.decode(p.mean, { dtype: ctx.dtype }), expected: t.get('expected/decoded') },
        { name: 'decoded_latent', got: vae.decode(on(t.get('input/latent'), ctx), { dtype: ctx.dtype }), expected: t.get('expected/decoded_latent') },
      ];
    });
  } finally {
    vae.dispose();
  }
};

function clipText(config: unknown, weights: Map<string, Tensor>, ctx: CheckContext): CLIPTextEncoder {
  const m = CLIPTextEncoder.create(config as never);
  weights.delete('embeddings.position_ids');
  noGrad(() => m.loadStateDict(weights));
  m.eval();
  if (ctx.device !== 'cpu') m.to({ device: ctx.device });
  return m;
}

CHECKERS['clip-text'] = (c, t, ctx) => {
  const m = clipText(c.config, sdWeights(c, t), ctx);
  try {
    return [{ name: 'hidden', got: noGrad(() => m.forward(on(t.get('input/tokens'), ctx), { dtype: ctx.dtype })), expected: t.get('expected/hidden') }];
  } finally {
    m.dispose();
  }
};

CHECKERS['clip-tokenizer'] = (c, t, ctx) => {
  const tok = CLIPTokenizer.load(path.join(ctx.dir ?? '.', c.vocab as string));
  const got = tok.batch(c.prompts as string[], { contextLength: (c.config as { context_length: number }).context_length });
  return [{ name: 'tokens', got, expected: t.get('expected/tokens') }];
};

CHECKERS['sd-ddim-cfg'] = (c, t, ctx) => {
  const cfg = c.config as { unet: unknown; text: unknown; ddim: { steps: number; guidance_scale: number; linear_start: number; linear_end: number; num_train_timesteps: number } };
  const unet = sdUnet(cfg.unet, sdWeights(c, t, 'weights/', 'model.diffusion_model.'), ctx);
  const text = clipText(cfg.text, sdWeights(c, t, 'weights/', 'cond_stage_model.transformer.text_model.'), ctx);
  try {
    return noGrad(() => {
      const context = text.forward(on(t.get('input/tokens'), ctx), { dtype: ctx.dtype });
      const uncond = text.forward(on(t.get('input/uncond_tokens'), ctx), { dtype: ctx.dtype });
      const ac = alphasCumprod({ linear_start: cfg.ddim.linear_start, linear_end: cfg.ddim.linear_end, timesteps: cfg.ddim.num_train_timesteps });
      const r = ddimSample((x, ts, cx) => unet.forward(x, ts, cx, { dtype: ctx.dtype }), on(t.get('input/latent_T'), ctx), { context, uncond }, {
        steps: cfg.ddim.steps, guidance: cfg.ddim.guidance_scale, alphasCumprod: ac.toFloat64Array(), trajectory: true,
      });
      return [
        { name: 'context', got: context, expected: t.get('expected/context') },
        { name: 'uncond_context', got: uncond, expected: t.get('expected/uncond_context') },
        { name: 'alphas_cumprod', got: ac, expected: t.get('expected/alphas_cumprod') },
        { name: 'timesteps', got: tensor(r.timesteps, { dtype: 'int64' }), expected: t.get('expected/timesteps') },
        { name: 'step_alphas', got: tensor(r.stepAlphas), expected: t.get('expected/step_alphas') },
        { name: 'step_alphas_prev', got: tensor(r.stepAlphasPrev), expected: t.get('expected/step_alphas_prev') },
        { name: 'trajectory', got: r.trajectory!, expected: t.get('expected/trajectory') },
        { name: 'pred_x0', got: r.predX0!, expected: t.get('expected/pred_x0') },
        { name: 'x0', got: r.x0, expected: t.get('expected/x0') },
      ];
    });
  } finally {
    unet.dispose();
    text.dispose();
  }
};

// DMD2's text-to-image losses through the DMD core (dmd/losses.ts) and the SD score model adapter
// (dmd/models/sd.ts), with the case's own alphas_cumprod (DMD2 takes diffusers' float32 table)
CHECKERS['sd-dmd-losses'] = (c, t, ctx) => {
  const real = sdUnet(c.config, sdWeights(c, t, 'real/', 'model.diffusion_model.'), ctx);
  const fake = sdUnet(c.config, sdWeights(c, t, 'fake/', 'model.diffusion_model.'), ctx);
  const ac = on(t.get('expected/alphas_cumprod'), ctx);
  const latents = on(t.get('input/latents'), ctx);
  const parts = { alphasCumprod: ac, uncond: on(t.get('input/uncond'), ctx), latentShape: latents.shape.slice(1), imageResolution: latents.shape[2]! * 8 };
  const R = new SDScoreModel({ ...parts, unet: real });
  const Fk = new SDScoreModel({ ...parts, unet: fake });
  const schedule = R.schedule({ numTrainTimesteps: 1000, sigmaMin: 0, sigmaMax: 0, rho: 0 });
  try {
    const text = on(t.get('input/text'), ctx);
    const guidance = c.real_guidance_scale as number;
    const realFn = R.score({ guidance, dtype: ctx.dtype });
    const fakeFn = Fk.score({ dtype: ctx.dtype });
    const x = latents.detach().requiresGrad_();
    const dmDraw = { tIndex: on(t.get('input/dm_timesteps'), ctx), noise: on(t.get('input/dm_noise'), ctx) };
    const dm = distributionMatchingLoss(x, text, realFn, fakeFn, schedule, dmDraw);
    dm.loss.backward();
    const fakeDraw = { tIndex: on(t.get('input/fake_timesteps'), ctx), noise: on(t.get('input/fake_noise'), ctx) };
    const fl = noGrad(() => fakeScoreLoss(latents, text, fakeFn, schedule, fakeDraw));
    const noisy = (d: { tIndex: Tensor; noise: Tensor }) => schedule.addNoise(latents, d.tIndex, d.noise).noisy;
    const fakeNoisy = noisy(fakeDraw);
    return [
      { name: 'dm_noisy_latents', got: noisy(dmDraw), expected: t.get('expected/dm_noisy_latents') },
      { name: 'fake_noisy_latents', got: fakeNoisy, expected: t.get('expected/fake_noisy_latents') },
      { name: 'pred_real_x0', got: dm.predReal, expected: t.get('expected/pred_real_x0') },
      { name: 'pred_fake_x0', got: dm.predFake, expected: t.get('expected/pred_fake_x0') },
      { name: 'dm_grad', got: dm.grad, expected: t.get('expected/dm_grad') },
      { name: 'dm_loss', got: dm.loss.reshape([1]), expected: t.get('expected/dm_loss') },
      { name: 'dm_latents_grad', got: x.grad!, expected: t.get('expected/dm_latents_grad') },
      { name: 'fake_loss', got: fl.loss.reshape([1]), expected: t.get('expected/fake_loss') },
      { name: 'fake_x0', got: noGrad(() => fakeFn(fakeNoisy, fakeDraw.tIndex, text)), expected: t.get('expected/fake_x0') },
    ];
  } finally {
    R.dispose();
    Fk.dispose();
    schedule.dispose();
  }
};
