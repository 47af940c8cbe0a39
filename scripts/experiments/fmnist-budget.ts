// Budget curves of the distillation recipes on the bundled Fashion-MNIST teacher, with diagnostics of the
// distribution-matching term (src/dmd/diagnostics.ts) along the way (experiments/fmnist-budget).
//
//   npx tsx scripts/experiments/fmnist-budget.ts train ID [--steps N] [--every E]   # a resumable dmd-train run, a checkpoint every E iterations
//   npx tsx scripts/experiments/fmnist-budget.ts eval ID                            # FD/precision/recall of G and its EMA + diagnostics at each new checkpoint
//   npx tsx scripts/experiments/fmnist-budget.ts calibrate [ID,...]                 # seconds per iteration of each recipe with all threads, alone on the machine
//   npx tsx scripts/experiments/fmnist-budget.ts compare RUN@STEP ... [--num 5000 --seeds 0,1 --which G]  # the EMA generators (or G) with more samples and seeds (compare.json)
//   npx tsx scripts/experiments/fmnist-budget.ts ganshare RUN@STEP [--weight W]      # the GAN generator gradient against the regression's, in the samples and in G's weights
//   npx tsx scripts/experiments/fmnist-budget.ts average RUN@S1,S2,...                # FD of the uniform average of G's weights at these checkpoints (a short-window EMA, post hoc)
//   npx tsx scripts/experiments/fmnist-budget.ts invert [--split test --count 1024]   # pairs whose targets are real images, carried up the teacher's ODE (runs/budget/pairs-inverted-*)
//   npx tsx scripts/experiments/fmnist-budget.ts report                             # experiments/fmnist-budget: results.md, curves.json, PNG plots
//   npx tsx scripts/experiments/fmnist-budget.ts restore                            # --out rebuilt from the published curves (a new machine)
//
// Runs go two at a time with one libtorch thread each (DMD_NUM_THREADS=1); their time axis is the
// iterations times the calibrated seconds per iteration of the same recipe with both threads alone, so
// the curves read in minutes of a 2-core machine running one job. Everything lives in --out (runs/budget).
import { existsSync, readFileSync, readdirSync, writeFileSync, appendFileSync, rmSync, mkdtempSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { DMDTrainer, tidy, dispose, noGrad, randn, Generator, loadEDM, defaultTeacherPath, edmSample, karrasSteps, evaluate, EvalConfigSchema, getNumThreads, buildInfo, type DMDConfig } from '../../src/index.js';
import { CheckpointStore } from '../../src/train/checkpoints.js';
import { dmDiagnostics, compareSampleGradients, compareWeightGradients, type DMDiagnostics } from '../../src/dmd/diagnostics.js';
import { PairsDataset } from '../../src/dmd/regression/pairs.js';
import { resolveAutoPairs } from '../../src/dmd/regression/auto-pairs.js';
import { ensureDir, atomicWrite } from '../../src/util/fs.js';
import { denoiser } from '../../src/edm/guidance.js';
import { openDataset, ImageLoader, writeSafetensors, cat } from '../../src/index.js';
import { pathSha256 } from '../../src/util/fs.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { autograd } from '../../src/tensor/autograd.js';
import { foreach } from '../../src/tensor/foreach.js';
import { regressionLoss } from '../../src/dmd/regression/losses.js';
import { ganGeneratorLoss } from '../../src/dmd/losses.js';
import type { ScoreModel } from '../../src/dmd/score-model.js';

const argv = process.argv.slice(2);
const opt = (n: string, d: string) => { const i = argv.indexOf(`--${n}`); return i >= 0 ? argv[i + 1]! : d; };
const [mode, id] = argv;
const out = path.resolve(opt('out', 'runs/budget'));
const publish = path.resolve(opt('publish', 'experiments/fmnist-budget'));
const log = (s: string) => console.log(`[budget] ${s}`);

interface Preset {
  label: string;
  dmd: Partial<DMDConfig> & Record<string, unknown>;
  /**
   * start from another run: a phased run (dmStart) takes its regression phase from regression-only run
   * `from`'s checkpoint at dmStart; with `at`, the run continues `from` whole (fake score included) from
   * its checkpoint at that iteration; with `streams` 'own', the branched run draws from its own seed's
   * random streams, not the other run's (a second seed of a branched run)
   */
  branch?: { from: string; at?: number; streams?: 'own' };
  /** the calibrated run whose seconds per iteration this run's (DMD-phase) iterations cost (default: its own) */
  costAs?: string;
  /** fd-vs-minutes.png draws the generator's own FD too (a run whose EMA lags far behind a fast-moving generator) */
  plotG?: boolean;
}
// every preset sets lambdaDm: the default recipe's budget plan fills what a preset leaves unset (regression alone at 20 minutes)
const reg = { pairs: 'auto' } as const;
// DMD2 after a regression phase (items 21-22): 150 warm-up iterations of the fake score and the head, then
// DM x10 at fake:gen 5 and the GAN at 100x its generator weight on real Fashion-MNIST (dmStart, the head's
// input and other changes per preset)
const dmd2AfterReg = { ...reg, fakeWarmup: 150, fakeUpdatesPerGen: 5, lambdaDm: 10, gan: true, ganGenWeight: 0.3, data: 'fashion-mnist' } as const;
// regression beside a GAN head on the frozen teacher after a regression phase (items 24-26): no DM and no fake
// score, both turns every iteration, item 24's head warm-up (50), generator weight 0.3 and head loss 0.1 (changes per preset)
const tganAfterReg = { ...reg, lambdaDm: 0, dmStart: 600, fakeWarmup: 50, fakeUpdatesPerGen: 1, gan: true, ganFeatures: 'teacher', ganGenWeight: 0.3, ganHeadWeight: 0.1, data: 'fashion-mnist' } as const;
// item 26's settings (400 warm-up iterations, generator weight 1), which --budget plans (items 26-27)
const tganPlanned = { ...tganAfterReg, fakeWarmup: 400, ganGenWeight: 1 } as const;
export const PRESETS: Record<string, Preset> = {
  reg: { label: 'regression only', dmd: { ...reg, lambdaDm: 0 } },
  'dmd-1': { label: 'DMD: DM + regression, fake:gen 1 (the default recipe)', dmd: { ...reg, lambdaDm: 1, fakeUpdatesPerGen: 1 } },
  'dmd-5': { label: 'DMD: DM + regression, fake:gen 5', dmd: { ...reg, lambdaDm: 1, fakeUpdatesPerGen: 5 } },
  'dm-5': { label: 'DM only, fake:gen 5', dmd: { lambdaDm: 1, fakeUpdatesPerGen: 5, lambdaReg: 0 }, plotG: true },
  'dmd-1-reg0.025': { label: 'DMD, fake:gen 1, regression weight 0.025 (a tenth)', dmd: { ...reg, lambdaDm: 1, fakeUpdatesPerGen: 1, lambdaReg: 0.025 }, costAs: 'dmd-1' },
  'reg600-dm10-5': { label: 'regression alone for 600 iterations, 150 fake-score warm-up iterations, then DMD with DM x10, fake:gen 5', dmd: { ...reg, dmStart: 600, fakeWarmup: 150, fakeUpdatesPerGen: 5, lambdaDm: 10 }, branch: { from: 'reg' }, costAs: 'dmd-5' },
  'reg2400-dm10-5': { label: 'regression alone for 2400 iterations, 150 fake-score warm-up iterations, then DMD with DM x10, fake:gen 5', dmd: { ...reg, dmStart: 2400, fakeWarmup: 150, fakeUpdatesPerGen: 5, lambdaDm: 10 }, branch: { from: 'reg' }, costAs: 'dmd-5' },
  'reg4800-dm10-5': { label: 'regression alone for 4800 iterations, 150 fake-score warm-up iterations, then DMD with DM x10, fake:gen 5 (the phased recipe branched later)', dmd: { ...reg, dmStart: 4800, fakeWarmup: 150, fakeUpdatesPerGen: 5, lambdaDm: 10 }, branch: { from: 'reg' }, costAs: 'dmd-5' },
  'reg1200-dmd-5': { label: 'regression alone for 1200 iterations, then 150 fake-score warm-up iterations, then DMD with fake:gen 5', dmd: { ...reg, lambdaDm: 1, dmStart: 1200, fakeWarmup: 150, fakeUpdatesPerGen: 5 }, branch: { from: 'reg' }, costAs: 'dmd-5' },
  'reg-2048': { label: 'regression only, 2048 pairs', dmd: { ...reg, autoPairs: 2048, lambdaDm: 0 }, costAs: 'reg' },
  'reg2400-dmd2-10-5': { label: 'regression alone for 2400 iterations, 150 fake-score and GAN-head warm-up iterations, then DMD2 + regression (diffusion GAN on real images) with DM and GAN x10, fake:gen 5', dmd: { ...reg, dmStart: 2400, fakeWarmup: 150, fakeUpdatesPerGen: 5, lambdaDm: 10, gan: true, diffusionGan: true, ganGenWeight: 3e-2, data: 'fashion-mnist' }, branch: { from: 'reg' }, costAs: 'dmd2-reg' },
  'reg3600-dmd2-10-100-5': { label: 'regression alone for 3600 iterations, 150 fake-score and GAN-head warm-up iterations, then DMD2 + regression (diffusion GAN on real images) with DM x10 and the GAN generator weight x100 (0.3), fake:gen 5', dmd: { ...dmd2AfterReg, dmStart: 3600, diffusionGan: true }, branch: { from: 'reg' }, costAs: 'dmd2-reg' },
  'reg3600-dmd2-clean-10-100-5': { label: 'as reg3600-dmd2-10-100-5, the GAN head on clean samples (no diffusion noise, as dmd2-reg)', dmd: { ...dmd2AfterReg, dmStart: 3600, diffusionGan: false }, branch: { from: 'reg' }, costAs: 'dmd2-reg' },
  'reg600-dmd2-clean-10-100-5': { label: 'as reg3600-dmd2-clean-10-100-5, branched off regression alone at 600 iterations (the 20-minute budget)', dmd: { ...dmd2AfterReg, dmStart: 600, diffusionGan: false }, branch: { from: 'reg' }, costAs: 'dmd2-reg' },
  'reg600-dmd2-clean-10-100-5-head10': { label: 'as reg600-dmd2-clean-10-100-5, the GAN head loss x10 (ganHeadWeight 0.1: the head learns faster)', dmd: { ...dmd2AfterReg, dmStart: 600, diffusionGan: false, ganHeadWeight: 0.1 }, branch: { from: 'reg' }, costAs: 'dmd2-reg' },
  'reg600-dmd2-clean-10-100-5-head10-lr3e-5': { label: 'as reg600-dmd2-clean-10-100-5-head10, the generator lr 3e-5 (0.3x) from the branch on (to hold its good states)', dmd: { ...dmd2AfterReg, dmStart: 600, diffusionGan: false, ganHeadWeight: 0.1, genLr: 3e-5 }, branch: { from: 'reg' }, costAs: 'dmd2-reg' },
  'reg-inv': { label: "regression only on 1024 Fashion-MNIST test images carried up the teacher's ODE to their noise (real images as targets; `invert`)", dmd: { pairs: path.join(out, 'pairs-inverted-test-1024'), lambdaDm: 0 }, costAs: 'reg' },
  'reg600-tgan-100': { label: "regression alone for 600 iterations, 50 warm-up iterations of a GAN head on the frozen teacher's bottleneck, then regression + that GAN (generator weight 0.3, head loss 0.1, clean samples, real Fashion-MNIST) with no distribution matching and no fake score, both turns every iteration", dmd: tganAfterReg, branch: { from: 'reg' } },
  'reg600-tgan-100-hlr1e-3': { label: "as reg600-tgan-100, the head's learning rate 1e-3 (10x: the head alone is trained, so its loss weight hardly matters under Adam)", dmd: { ...tganAfterReg, fakeLr: 1e-3 }, branch: { from: 'reg' }, costAs: 'reg600-tgan-100' },
  'reg600-tgan-100-diff500': { label: "as reg600-tgan-100, both inputs noised first (diffusion GAN, table indices below 500: sigma up to 2.5), so that the teacher's bottleneck sees the noise levels it denoises", dmd: { ...tganAfterReg, diffusionGan: true, diffusionGanMaxTimestep: 500 }, branch: { from: 'reg' }, costAs: 'reg600-tgan-100' },
  'reg300-tgan-100': { label: 'as reg600-tgan-100, branched off regression alone at 300 iterations (the GAN head warms up and takes over earlier)', dmd: { ...tganAfterReg, dmStart: 300 }, branch: { from: 'reg' }, costAs: 'reg600-tgan-100' },
  'reg600-tgan-w400': { label: "as reg600-tgan-100, 400 warm-up iterations of the head instead of 50 (the head discriminates before the generator's GAN turns begin)", dmd: { ...tganAfterReg, fakeWarmup: 400 }, branch: { from: 'reg' }, costAs: 'reg600-tgan-100' },
  'reg600-tgan-w400-g1': { label: 'as reg600-tgan-w400, the GAN generator weight 1 (3.3x)', dmd: tganPlanned, branch: { from: 'reg' }, costAs: 'reg600-tgan-100' },
  'reg600-tgan-w400-g1-lr2e-4': { label: 'as reg600-tgan-w400-g1, the generator lr 2e-4 (2x) from the branch on', dmd: { ...tganPlanned, genLr: 2e-4 }, branch: { from: 'reg' }, costAs: 'reg600-tgan-100' },
  'reg600-tgan-w400-g1-pairs': { label: "as reg600-tgan-w400-g1, the GAN judging the generator's outputs for the regression batch instead of fresh samples (one generator pass per iteration)", dmd: { ...tganPlanned, ganSamples: 'pairs' }, branch: { from: 'reg' } },
  'reg600-tgan-w400-g1-gb16': { label: 'as reg600-tgan-w400-g1, the GAN judging 16 of the 32 samples (--gan-batch-size 16: its generator term on 16 fresh samples, its head on 16 generated and 16 real), continued from its iteration 900 (in the head warm-up)', dmd: { ...tganPlanned, ganBatchSize: 16 }, branch: { from: 'reg600-tgan-w400-g1', at: 900 } },
  'reg600-tgan-w400-g1-gb8': { label: 'the same with 8 of the 32 samples (--gan-batch-size 8)', dmd: { ...tganPlanned, ganBatchSize: 8 }, branch: { from: 'reg600-tgan-w400-g1', at: 900 } },
  'reg600-tgan-w400-g1-gb4': { label: 'the same with 4 of the 32 samples (--gan-batch-size 4)', dmd: { ...tganPlanned, ganBatchSize: 4 }, branch: { from: 'reg600-tgan-w400-g1', at: 900 } },
  'reg600-tgan-w400-g1-seed1-gb8': { label: 'reg600-tgan-w400-g1-gb8 at seed 1: continuing reg600-tgan-w400-g1-seed1 from its iteration 900', dmd: { ...tganPlanned, ganBatchSize: 8, seed: 1 }, branch: { from: 'reg600-tgan-w400-g1-seed1', at: 900 }, costAs: 'reg600-tgan-w400-g1-gb8' },
  'p512-tgan-gb8': { label: "the 20-minute plan (item 28: regression 600, the head's warm-up 400, then the teacher-GAN judging 8 samples) on 512 pairs instead of 1024 (half the time to make them), the head judging 8 samples from its warm-up on", dmd: { ...tganPlanned, autoPairs: 512, ganBatchSize: 8 }, costAs: 'reg600-tgan-w400-g1-gb8' },
  'p512-tgan-gb8-seed1': { label: 'p512-tgan-gb8 at seed 1 (its own random streams from the start, the same pairs)', dmd: { ...tganPlanned, autoPairs: 512, ganBatchSize: 8, seed: 1 }, costAs: 'reg600-tgan-w400-g1-gb8' },
  'p256-tgan-gb8': { label: 'as p512-tgan-gb8, on 256 pairs (a quarter of the time to make them)', dmd: { ...tganPlanned, autoPairs: 256, ganBatchSize: 8 }, costAs: 'reg600-tgan-w400-g1-gb8' },
  'p256-tgan-gb8-seed1': { label: 'p256-tgan-gb8 at seed 1 (its own random streams from the start, the same pairs)', dmd: { ...tganPlanned, autoPairs: 256, ganBatchSize: 8, seed: 1 }, costAs: 'reg600-tgan-w400-g1-gb8' },
  'reg600-tgan-w400-g1-decay310': { label: "reg600-tgan-w400-g1 continued from its iteration 1050 with the generator lr falling linearly to 0 by 1360 (the 20-minute plan's length: G settles where it ends)", dmd: { ...tganPlanned, lrDecay: 310 }, branch: { from: 'reg600-tgan-w400-g1', at: 1050 }, costAs: 'reg600-tgan-100' },
  'reg600-tgan-w400-g1-seed1-decay310': { label: 'the same, continuing reg600-tgan-w400-g1-seed1', dmd: { ...tganPlanned, lrDecay: 310, seed: 1 }, branch: { from: 'reg600-tgan-w400-g1-seed1', at: 1050 }, costAs: 'reg600-tgan-100' },
  'reg600-tgan-w400-g3': { label: 'as reg600-tgan-w400, the GAN generator weight 3 (10x)', dmd: { ...tganAfterReg, fakeWarmup: 400, ganGenWeight: 3 }, branch: { from: 'reg' }, costAs: 'reg600-tgan-100' },
  'reg-decay480': { label: 'regression only, the generator lr falling linearly to 0 over the last 480 iterations', dmd: { ...reg, lambdaDm: 0, lrDecay: 480 }, costAs: 'reg' },
  'reg-lr3e-4': { label: 'regression only, generator lr 3e-4 (3x)', dmd: { ...reg, lambdaDm: 0, genLr: 3e-4 }, costAs: 'reg' },
  'reg-lr1e-3': { label: 'regression only, generator lr 1e-3 (10x)', dmd: { ...reg, lambdaDm: 0, genLr: 1e-3 }, costAs: 'reg' },
  'reg-dropout': { label: "regression only, the generator's dropout (0.1) active", dmd: { ...reg, lambdaDm: 0, dropout: true }, costAs: 'reg' },
  'dm-5-decay': { label: 'DM only, fake:gen 5, continued from iteration 3600 with the generator lr falling linearly to 0 by 4800', dmd: { lambdaDm: 1, fakeUpdatesPerGen: 5, lambdaReg: 0, lrDecay: 1200 }, branch: { from: 'dm-5', at: 3600 }, costAs: 'dm-5', plotG: true },
  'dmd2-reg': { label: 'DMD2 (fake:gen 5 + GAN) + regression', dmd: { ...reg, lambdaDm: 1, fakeUpdatesPerGen: 5, gan: true, data: 'fashion-mnist' } },
  'dmd2-reg-gan10': { label: 'DMD2 (fake:gen 5 + GAN) + regression, the generator GAN weight x10 (3e-2)', dmd: { ...reg, lambdaDm: 1, fakeUpdatesPerGen: 5, gan: true, data: 'fashion-mnist', ganGenWeight: 3e-2 }, costAs: 'dmd2-reg' },
};
// second seeds (item 23): the same settings with seed 1 from the branch on (own random streams, fake score and head)
for (const name of ['reg600-dmd2-clean-10-100-5-head10', 'reg3600-dmd2-clean-10-100-5', 'reg600-tgan-100', 'reg600-tgan-w400-g1', 'reg600-tgan-w400-g1-pairs']) {
  const p = PRESETS[name]!;
  PRESETS[`${name}-seed1`] = { ...p, label: `${name} with seed 1 from the branch on (its own random streams and GAN head, and fake score where it has one)`, dmd: { ...p.dmd, seed: 1 }, branch: { ...p.branch!, streams: 'own' }, costAs: p.costAs ?? name };
}
// settings every run shares: the default recipe's (lr 1e-4, warm-up 100, batch 32, regression weight 0.25 where used), EMA 0.99, seed 0
// gan: false unless a preset turns the GAN on: the default recipe's 20-minute plan (which fills what a
// preset leaves unset) has a GAN since item 27, and the presets without one were made without it
const shared = { emaDecay: 0.99, seed: 0, device: 'cpu', sampleEvery: 1e9, metricsEvery: 10, finalEval: 0, keepCheckpoints: 10000, gan: false } as const;

function preset(name: string | undefined): Preset {
  const p = name ? PRESETS[name] : undefined;
  if (!p) throw new Error(`unknown run '${name}'; one of ${Object.keys(PRESETS).join(', ')}`);
  if (p.dmd.lambdaDm === undefined) throw new Error(`preset '${name}' must set lambdaDm (left unset, the default recipe's budget plan decides it)`);
  return p;
}
const runDir = (name: string) => path.join(out, name, 'run');
const curveFile = (name: string) => path.join(out, name, 'curve.jsonl');
/** a run's checkpoints (all kept) */
const checkpoints = (name: string) => new CheckpointStore(path.join(runDir(name), 'checkpoints'), 10000, 'checkpoint', false);

async function settings(name: string, extra: Record<string, unknown> = {}): Promise<Partial<DMDConfig> & Record<string, unknown>> {
  const p = preset(name);
  const cfg = { ...shared, ...p.dmd, out: runDir(name), ...extra } as Partial<DMDConfig>;
  // every run regresses on the same pairs (those of seed 0), whatever its own seed
  const resolved = await resolveAutoPairs({ ...cfg, seed: shared.seed }, log);
  return { ...resolved, seed: cfg.seed } as Partial<DMDConfig> & Record<string, unknown>;
}

/**
 * A phased run (--dm-start S) branched off the regression-only run at its checkpoint S: the regression
 * phase of a phased run is exactly a regression-only run (test/native/dmd-phases.test.ts), so its
 * generator, EMA, optimizer and random streams are taken from there and the fresh fake score, GAN head
 * and their optimizer from the new trainer; the run then continues from iteration S. With `at` (a
 * preset's branch.at) the run instead continues the other run whole from its checkpoint `at`, under its
 * own settings (a changed lr schedule, say). With `streams` 'own' the random streams are the new trainer's
 * (its own seed's) too.
 */
function branchFrom(tr: DMDTrainer, from: string, at?: number, streams?: 'own'): void {
  const S = at ?? tr.cfg.dmStart;
  const c = checkpoints(from).list().find((k) => k.step === S);
  if (!c) throw new Error(`the ${from} run has no checkpoint at iteration ${S} (${at === undefined ? '--dm-start' : 'branch.at'}) to branch from`);
  const ck = CheckpointStore.load<{ values?: Record<string, unknown> }>(c.file);
  if (at !== undefined) tr.state.restore(ck);
  else tidy(() => {
    const own = tr.state.snapshot();
    const tensors = new Map(ck.tensors);
    const keep = streams === 'own' ? /^(fake|head|optF|rng)\// : /^(fake|head|optF)\//;
    for (const [k, v] of own.tensors) if (keep.test(k)) tensors.set(k, v);
    tr.state.restore({ ...ck, tensors, meta: { ...ck.meta, values: { ...ck.meta.values, 'optF.step': own.values['optF.step'] } } });
  });
  for (const t of ck.tensors.values()) t.dispose();
  log(`branched off ${from} at iteration ${S}`);
}

async function train(name: string): Promise<void> {
  const p = preset(name);
  const steps = Number(opt('steps', '2400'));
  const every = Number(opt('every', '200'));
  const cfg = await settings(name, { steps, checkpointEvery: every, resume: true });
  const tr = new DMDTrainer(cfg, log);
  if (p.branch && !checkpoints(name).list().length) branchFrom(tr, p.branch.from, p.branch.at, p.branch.streams);
  log(`${name}: ${tr.describe()}; ${getNumThreads()} threads`);
  await tr.train(log, { progress: false });
  tr.dispose();
}

interface CurvePoint {
  step: number;
  genUpdates: number;
  /** wall seconds of training in this run (one thread, another run beside it) */
  seconds: number;
  /** null when evaluated with --ema-only */
  G: Record<string, number> | null;
  ema: Record<string, number> | null;
  diagnostics: DMDiagnostics | null;
  /**
   * mean l2 distance of G's (and the EMA's) output to the teacher's Heun-18 ODE output from the same
   * noise, on 64 noises of the pairs (trained on) and 64 fresh ones: the regression's generalisation gap
   */
  odeDistance?: { G: { pairs: number; fresh: number }; ema: { pairs: number; fresh: number } | null };
}

function metricsAt(name: string): Map<number, Record<string, number>> {
  const f = path.join(runDir(name), 'metrics.jsonl');
  const m = new Map<number, Record<string, number>>();
  if (!existsSync(f)) return m;
  for (const line of readFileSync(f, 'utf8').trim().split('\n')) {
    const r = JSON.parse(line) as Record<string, number>;
    m.set(r.step!, r);
  }
  return m;
}

function readCurve(name: string): CurvePoint[] {
  const f = curveFile(name);
  return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as CurvePoint) : [];
}

/** A trainer's whole state from one of its run's checkpoints (the loaded tensors freed after). */
function restoreCheckpoint(tr: DMDTrainer, file: string): void {
  const ck = CheckpointStore.load<{ values?: Record<string, unknown> }>(file);
  tr.state.restore(ck);
  for (const t of ck.tensors.values()) t.dispose();
}

/** FD-fmnist, precision, recall and classifier accuracy of a generator file: `num` class-balanced samples drawn with `seed` against 10 000 training images. */
async function scoreGenerator(file: string, num: number, seed: number): Promise<Record<string, number>> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'budget-score-'));
  try {
    const r = await evaluate(EvalConfigSchema.parse({ generator: file, num, refNum: 10000, seed, device: 'cpu', batchSize: 250, out: path.join(tmp, 'metrics.json') }), () => {}, { single: true });
    return Object.fromEntries(['FD-fmnist', 'precision', 'recall', 'classifier_accuracy_on_samples'].map((k) => [k, r[k] as number]));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function evalRun(name: string): Promise<void> {
  const curve = readCurve(name);
  const done = new Set(curve.map((c) => c.step));
  const store = checkpoints(name);
  // --at 2400,3000: only these checkpoints; --ema-only: skip G's own evaluation where an EMA exists
  const at = opt('at', '') ? new Set(opt('at', '').split(',').map(Number)) : null;
  const emaOnly = argv.includes('--ema-only');
  const todo = store.list().filter((c) => !done.has(c.step) && (!at || at.has(c.step)));
  // points evaluated before the ODE-distance probe existed get it added
  const backfill = store.list().filter((c) => curve.some((p) => p.step === c.step && !p.odeDistance));
  if (!todo.length && !backfill.length && !argv.includes('--with-g')) return log(`${name}: every checkpoint evaluated`);
  const cfg = await settings(name, { steps: 1e9 });
  const tr = new DMDTrainer(cfg, () => {});
  const probePairs = new PairsDataset(((await resolveAutoPairs({ ...shared, pairs: 'auto' }, () => {})).pairs) as string);
  const metrics = metricsAt(name);
  // the generalisation probe: 64 pair noises with their targets, 64 fresh noises with the teacher's ODE outputs
  const probe = tidy(() => {
    const pb = probePairs.batch(64, Generator.create('cpu', 4321), 'cpu');
    const cond = tr.real.conditionsOf(pb.index);
    const z = randn(pb.z.shape, { generator: Generator.create('cpu', 8765) });
    const teacherNet = loadEDM(defaultTeacherPath());
    const y = noGrad(() => edmSample(denoiser(teacherNet), z, cond, karrasSteps(18)).x.to('float32'));
    teacherNet.dispose();
    return { pz: pb.z, py: pb.y, cond: cond!, z, y };
  });
  const odeDistance = (net: ScoreModel) => tidy(() => {
    const d = (a: Tensor, b: Tensor) => a.sub(b).square().sum([1, 2, 3]).sqrt().mean().item();
    return { pairs: d(net.generate(probe.pz, probe.cond, tr.generator.level), probe.py), fresh: d(net.generate(probe.z, probe.cond, tr.generator.level), probe.y) };
  });
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'budget-'));
  const evalFile = (file: string) => scoreGenerator(file, 1000, 0);
  for (const c of backfill) {
    restoreCheckpoint(tr, c.file);
    const p = curve.find((q) => q.step === c.step)!;
    p.odeDistance = noGrad(() => ({ G: odeDistance(tr.G), ema: tr.ema ? odeDistance(tr.ema) : null }));
    log(`${name} @ ${c.step}: |G(z) - ODE(z)| (EMA) pairs ${(p.odeDistance.ema ?? p.odeDistance.G).pairs.toFixed(3)} fresh ${(p.odeDistance.ema ?? p.odeDistance.G).fresh.toFixed(3)} (added)`);
  }
  // --with-g: points evaluated with --ema-only get G's own evaluation added (the checkpoints of --at, or all)
  const backfillG = argv.includes('--with-g') ? store.list().filter((c) => (!at || at.has(c.step)) && curve.some((p) => p.step === c.step && !p.G)) : [];
  for (const c of backfillG) {
    restoreCheckpoint(tr, c.file);
    tr.exportGenerator(path.join(tmp, 'G.safetensors'), 'G');
    const p = curve.find((q) => q.step === c.step)!;
    p.G = await evalFile(path.join(tmp, 'G.safetensors'));
    log(`${name} @ ${c.step}: FD G ${p.G['FD-fmnist']!.toFixed(3)} (added)`);
  }
  if (backfill.length || backfillG.length) atomicWrite(curveFile(name), curve.map((p) => `${JSON.stringify(p)}\n`).join(''));
  for (const c of todo) {
    restoreCheckpoint(tr, c.file);
    let G: Record<string, number> | null = null;
    if (!emaOnly || !tr.ema) {
      tr.exportGenerator(path.join(tmp, 'G.safetensors'), 'G');
      G = await evalFile(path.join(tmp, 'G.safetensors'));
    }
    let ema: Record<string, number> | null = null;
    if (tr.ema) {
      tr.exportGenerator(path.join(tmp, 'ema.safetensors'), 'ema');
      ema = await evalFile(path.join(tmp, 'ema.safetensors'));
    }
    const diagnostics = tr.critic?.fake
      ? dmDiagnostics({ generator: tr.generator, critic: tr.critic, pairs: probePairs, schedule: tr.schedule }, { ...tr.cfg, lambdaReg: tr.cfg.lambdaReg || 0.25, regression: tr.cfg.regression })
      : null;
    const m = metrics.get(c.step);
    const { dmStart: S, fakeWarmup: W, fakeUpdatesPerGen: fg } = tr.cfg;
    const genUpdates = tr.critic ? Math.min(c.step, S) + Math.ceil(Math.max(c.step - S - W, 0) / fg) : c.step;
    const ode = noGrad(() => ({ G: odeDistance(tr.G), ema: tr.ema ? odeDistance(tr.ema) : null }));
    const point: CurvePoint = { step: c.step, genUpdates, seconds: m?.seconds ?? NaN, G, ema, diagnostics, odeDistance: ode };
    appendFileSync(curveFile(name), `${JSON.stringify(point)}\n`);
    const d = diagnostics ? `; fake/real ${diagnostics.levels.map((l) => l.fakeOverReal.toFixed(2)).join(' ')}; |DM|/|reg| ${diagnostics.levels.map((l) => l.normRatio.toFixed(3)).join(' ')}; cos ${diagnostics.levels.map((l) => l.cosine.toFixed(2)).join(' ')}; weights cos ${diagnostics.weightsCosine.toFixed(3)} ratio ${diagnostics.weightsNormRatio.toFixed(3)}` : '';
    const o = ode.ema ?? ode.G;
    log(`${name} @ ${c.step}: FD G ${G ? G['FD-fmnist']!.toFixed(3) : '–'}${ema ? `, EMA ${ema['FD-fmnist']!.toFixed(3)}` : ''}; |G(z) - ODE(z)| (EMA) pairs ${o.pairs.toFixed(3)} fresh ${o.fresh.toFixed(3)}${d}`);
  }
  rmSync(tmp, { recursive: true, force: true });
  dispose(probe);
  probePairs.dispose();
  tr.dispose();
}

/**
 * The decisive comparisons with less evaluation noise: the EMA generators of RUN@STEP, ... each scored on
 * --num samples (default 5000) for each of --seeds (default 0,1), into compare.json (appended).
 */
async function compare(specs: string[]): Promise<void> {
  const num = Number(opt('num', '5000'));
  const seeds = opt('seeds', '0,1').split(',').map(Number);
  const file = path.join(out, 'compare.json');
  const all = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as unknown[]) : [];
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'budget-cmp-'));
  for (const spec of specs) {
    const [name, stepText] = spec.split('@');
    const step = Number(stepText);
    const c = checkpoints(name!).list().find((k) => k.step === step);
    if (!c) throw new Error(`${name} has no checkpoint at ${step}`);
    const tr = new DMDTrainer(await settings(name!, { steps: 1e9 }), () => {});
    restoreCheckpoint(tr, c.file);
    // --which G scores the generator itself where the run keeps an EMA too
    const hasEma = !!tr.ema;
    const which = hasEma && opt('which', 'ema') !== 'G' ? 'ema' : 'G';
    tr.exportGenerator(path.join(tmp, 'ema.safetensors'), which);
    tr.dispose();
    for (const seed of seeds) {
      const r = await scoreGenerator(path.join(tmp, 'ema.safetensors'), num, seed);
      const minutes = minutesOf(name!, existsSync(path.join(out, 'calibration.json')) ? JSON.parse(readFileSync(path.join(out, 'calibration.json'), 'utf8')) : {})(step);
      const row = { run: name, step, minutes, num, seed, ...(which === 'G' && hasEma && { generator: 'G' }), 'FD-fmnist': r['FD-fmnist'], precision: r.precision, recall: r.recall };
      all.push(row);
      atomicWrite(file, `${JSON.stringify(all, null, 1)}\n`);
      log(`${spec} (${minutes.toFixed(1)} min, ${which}), ${num} samples, seed ${seed}: FD ${r['FD-fmnist']!.toFixed(4)}`);
    }
  }
  rmSync(tmp, { recursive: true, force: true });
}

async function calibrate(names: string[]): Promise<void> {
  const file = path.join(ensureDir(out, '--out'), 'calibration.json');
  const cal = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  for (const name of names) {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'budget-cal-'));
    // 'fake-warmup': iterations of the fake score alone (the phase after --dm-start); 'teacher-gan-warmup':
    // those of the GAN head on the frozen teacher alone (reg600-tgan-100's; '-gb8': judging 8 samples); a
    // phased preset: its last phase
    const warmup = { 'fake-warmup': 'dmd-5', 'teacher-gan-warmup': 'reg600-tgan-100', 'teacher-gan-warmup-gb8': 'reg600-tgan-w400-g1-gb8' }[name];
    const cfg = warmup ? await settings(warmup, { out: tmp, steps: 1e9, dmStart: 0, fakeWarmup: 1e8 }) : await settings(name, { out: tmp, steps: 1e9, dmStart: 0, fakeWarmup: 0 });
    const tr = new DMDTrainer(cfg, () => {});
    const warm = 5, n = Number(opt('iterations', '30'));
    for (let i = 0; i < warm; i++) tr.iteration();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) tr.iteration();
    const s = (performance.now() - t0) / 1000 / n;
    cal[name] = { secondsPerIteration: s, threads: getNumThreads(), iterations: n, cpu: os.cpus()[0]?.model, torch: buildInfo().torchVersion };
    log(`${name}: ${s.toFixed(3)} s/iteration (${getNumThreads()} threads)`);
    tr.dispose();
    rmSync(tmp, { recursive: true, force: true });
    atomicWrite(file, `${JSON.stringify(cal, null, 1)}\n`);
  }
}

// ---- report --------------------------------------------------------------------------------------

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

interface Series { name: string; points: [number, number][]; dashed?: boolean }

/** A line chart as SVG (axes, ticks, legend), rendered to PNG by headless Chromium. */
function chart(file: string, title: string, xLabel: string, yLabel: string, series: Series[], o: { yMin?: number; yMax?: number; hline?: { y: number; label: string }[] } = {}): void {
  // the height grows with the legend (one line per series) so that none is cut off
  const W = 900, L = 70, R = 260, T = 40, B = 50, H = Math.max(520, T + 30 + series.length * 20);
  // points outside [yMin, yMax] are drawn as open triangles on the edge they lie beyond, and the legend
  // says how many there are and their range (the tables have the values)
  const inRange = (y: number) => y <= (o.yMax ?? Infinity) && y >= (o.yMin ?? -Infinity);
  const finite = series.map((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  const outside = finite.map((pts) => pts.filter(([, y]) => !inRange(y)));
  series = series.map((s, i) => {
    const off = outside[i]!.map(([, y]) => y);
    const [lo, hi] = [Math.min(...off), Math.max(...off)].map((v) => +v.toFixed(2));
    const note = off.length ? ` (△ ${off.length}: ${lo === hi ? lo : `${lo}–${hi}`})` : '';
    return { ...s, name: s.name + note, points: finite[i]!.filter(([, y]) => inRange(y)) };
  });
  const all = [...series.flatMap((s) => s.points), ...outside.flat()];
  if (!all.length) return;
  const x1 = Math.max(...all.map(([x]) => x)) * 1.02;
  const ys = all.map(([, y]) => y).concat((o.hline ?? []).map((h) => h.y));
  const y0 = o.yMin ?? Math.min(0, ...ys), y1 = o.yMax ?? Math.max(...ys) * 1.05;
  const px = (x: number) => L + (x / x1) * (W - L - R);
  const py = (y: number) => H - B - ((Math.min(y, y1) - y0) / (y1 - y0)) * (H - T - B);
  const tick = (hi: number) => { const raw = hi / 6; const p = 10 ** Math.floor(Math.log10(raw)); return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw)!; };
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="13"><rect width="100%" height="100%" fill="white"/>`];
  parts.push(`<text x="${L}" y="24" font-size="16">${title}</text>`);
  const tx = tick(x1), ty = tick(y1 - y0);
  for (let x = 0; x <= x1; x += tx) parts.push(`<line x1="${px(x)}" y1="${T}" x2="${px(x)}" y2="${H - B}" stroke="#eee"/><text x="${px(x)}" y="${H - B + 16}" text-anchor="middle">${+x.toFixed(3)}</text>`);
  for (let y = Math.ceil(y0 / ty) * ty; y <= y1; y += ty) parts.push(`<line x1="${L}" y1="${py(y)}" x2="${W - R}" y2="${py(y)}" stroke="#eee"/><text x="${L - 6}" y="${py(y) + 4}" text-anchor="end">${+y.toFixed(3)}</text>`);
  parts.push(`<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">${xLabel}</text><text transform="translate(18 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${yLabel}</text>`);
  for (const h of o.hline ?? []) parts.push(`<line x1="${L}" y1="${py(h.y)}" x2="${W - R}" y2="${py(h.y)}" stroke="#555" stroke-dasharray="2 4"/><text x="${W - R - 4}" y="${py(h.y) - 4}" text-anchor="end" fill="#555">${h.label}</text>`);
  series.forEach((s, i) => {
    // colour, then (after each round of the palette's ten) a dotted and a dash-dotted stroke, so no two
    // series look alike; a series' own dashes stay dashes
    const c = COLORS[i % COLORS.length];
    const round = Math.floor(i / COLORS.length);
    const dash = s.dashed ? 'stroke-dasharray="6 4"' : round === 1 ? 'stroke-dasharray="1.5 3"' : round >= 2 ? 'stroke-dasharray="9 3 2 3"' : '';
    const pts = s.points;
    parts.push(`<polyline fill="none" stroke="${c}" stroke-width="2" ${dash} points="${pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of pts) parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${c}"/>`);
    for (const [x, y] of outside[i]!) {
      const up = y > y1, e = up ? T : H - B, d = up ? 1 : -1;
      parts.push(`<path d="M${px(x).toFixed(1)},${e} l-5,${8 * d} l10,0 z" fill="white" stroke="${c}" stroke-width="1.5"/>`);
    }
    parts.push(`<line x1="${W - R + 14}" y1="${T + 10 + i * 20}" x2="${W - R + 40}" y2="${T + 10 + i * 20}" stroke="${c}" stroke-width="2" ${dash}/><text x="${W - R + 46}" y="${T + 14 + i * 20}" font-size="${s.name.length > 36 ? 9.5 : s.name.length > 28 ? 11 : 13}">${s.name}</text>`);
  });
  parts.push('</svg>');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'chart-'));
  const svg = path.join(tmp, 'chart.svg');
  writeFileSync(svg, parts.join('\n'));
  execFileSync('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--window-size=${W},${H}`, `--screenshot=${file}`, `file://${svg}`], { stdio: 'ignore' });
  rmSync(tmp, { recursive: true, force: true });
}

/**
 * Minutes of a 2-core machine running the run alone, from the calibrated seconds per iteration of each
 * phase: regression (reg), fake-score (or teacher GAN head) warm-up, and the recipe itself (or the run it costs as).
 */
/** a run's preset; NAME-run1 is an earlier run of preset NAME kept for comparison (its points restored from the published curves) */
const presetOf = (name: string): Preset | undefined => PRESETS[name.replace(/-run1$/, '')];

function minutesOf(name: string, cal: Record<string, { secondsPerIteration: number }>): (step: number) => number {
  const p = presetOf(name);
  const S = (p?.dmd.dmStart as number | undefined) ?? 0;
  const W = (p?.dmd.fakeWarmup as number | undefined) ?? 0;
  const c = (k: string) => cal[k]?.secondsPerIteration ?? NaN;
  const own = c(p?.costAs ?? name.replace(/-run1$/, ''));
  // the warm-up of a GAN head on the frozen teacher trains no fake score (its own calibration where there is one)
  // (at 8 samples its own: a run continued from item 26's at 900 warmed up on all 32 until then, and keeps their cost)
  const warmGb8 = p?.dmd.ganBatchSize === 8 && !p.branch?.at && cal['teacher-gan-warmup-gb8'];
  const warm = warmGb8 ? c('teacher-gan-warmup-gb8') : p?.dmd.ganFeatures === 'teacher' && cal['teacher-gan-warmup'] ? c('teacher-gan-warmup') : c('fake-warmup');
  return (step) => (Math.min(step, S) * (S ? c('reg') : 0) + Math.min(Math.max(step - S, 0), W) * (W ? warm : 0) + Math.max(step - S - W, 0) * own) / 60;
}

function report(): void {
  ensureDir(publish, '--publish');
  const calFile = path.join(out, 'calibration.json');
  const cal = existsSync(calFile) ? (JSON.parse(readFileSync(calFile, 'utf8')) as Record<string, { secondsPerIteration: number }>) : {};
  const names = readdirSync(out).filter((n) => existsSync(curveFile(n)));
  const rows: string[] = [];
  const curves: Record<string, unknown> = {};
  const fdSeries: Series[] = [];
  for (const name of names) {
    const pts = readCurve(name).sort((a, b) => a.step - b.step);
    const minutes = minutesOf(name, cal);
    const p = presetOf(name);
    const spi = cal[p?.costAs ?? name.replace(/-run1$/, '')]?.secondsPerIteration;
    curves[name] = { label: p ? `${p.label}${name.endsWith('-run1') ? ' (an earlier run of the same settings)' : ''}` : name, secondsPerIteration: spi ?? null, points: pts.map((p) => ({ ...p, minutes: minutes(p.step) })) };
    fdSeries.push({ name, points: pts.map((p) => [minutes(p.step), (p.ema ?? p.G)!['FD-fmnist']!]) });
    if (p?.plotG && !name.endsWith('-run1')) fdSeries.push({ name: `${name}: G, not its EMA`, dashed: true, points: pts.filter((q) => q.G && q.ema).map((q) => [minutes(q.step), q.G!['FD-fmnist']!]) });
    for (const p of pts) {
      const f = (r: Record<string, number> | null, k: string) => (r ? r[k]!.toFixed(3) : '–');
      const o = p.odeDistance ? p.odeDistance.ema ?? p.odeDistance.G : null;
      rows.push(`| ${name} | ${p.step} | ${p.genUpdates} | ${minutes(p.step).toFixed(1)} | ${f(p.G, 'FD-fmnist')} | ${f(p.ema, 'FD-fmnist')} | ${f(p.ema ?? p.G, 'precision')} | ${f(p.ema ?? p.G, 'recall')} | ${f(p.ema ?? p.G, 'classifier_accuracy_on_samples')} | ${o ? `${o.pairs.toFixed(2)} / ${o.fresh.toFixed(2)}` : '–'} |`);
    }
  }
  writeFileSync(path.join(publish, 'curves.json'), `${JSON.stringify({ calibration: cal, curves }, null, 1)}\n`);
  writeFileSync(
    path.join(publish, 'results.md'),
    ['| run | iterations | G updates | minutes (2 threads) | FD G | FD EMA | precision (EMA) | recall (EMA) | accuracy (EMA) | to the ODE output, pair / fresh noise (EMA) |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |', ...rows].join('\n') + '\n',
  );
  chart(path.join(publish, 'fd-vs-minutes.png'), 'FD-fmnist of the EMA generator against training time (dashed: a generator itself)', 'minutes of training on 2 cores (pairs not included)', 'FD-fmnist', fdSeries, { yMin: 0.4, yMax: 1.2, hline: [{ y: 0.53, label: 'teacher (Heun 18)' }, { y: 0.636, label: '1.2x teacher' }] });
  const odeSeries = names.flatMap((name) => {
    const pts = readCurve(name).filter((p) => p.odeDistance).sort((a, b) => a.step - b.step);
    const m = minutesOf(name, cal);
    const e = (p: CurvePoint) => p.odeDistance!.ema ?? p.odeDistance!.G;
    return pts.length ? [{ name: `${name}: pair noise`, dashed: true, points: pts.map((p) => [m(p.step), e(p).pairs] as [number, number]) }, { name: `${name}: fresh noise`, points: pts.map((p) => [m(p.step), e(p).fresh] as [number, number]) }] : [];
  });
  chart(path.join(publish, 'ode-distance.png'), "mean |G(z) - teacher ODE(z)| of the EMA generator", 'minutes of training on 2 cores (pairs not included)', 'l2 distance (32x32 image in [-1, 1])', odeSeries);
  for (const name of names) {
    const pts = readCurve(name).filter((p) => p.diagnostics).sort((a, b) => a.step - b.step);
    if (!pts.length) continue;
    const K = pts[0]!.diagnostics!.levels.length;
    const lv = (k: number) => `sigma ${pts[0]!.diagnostics!.levels[k]!.level.toPrecision(2)}`;
    const per = (f: (l: DMDiagnostics['levels'][number]) => number): Series[] => Array.from({ length: K }, (_, k) => ({ name: lv(k), points: pts.map((p) => [p.step, f(p.diagnostics!.levels[k]!)] as [number, number]) }));
    chart(path.join(publish, `${name}-fake-tracking.png`), `${name}: fake score's denoising loss / teacher's, on generator samples`, 'iteration', 'fake / teacher', per((l) => l.fakeOverReal), { hline: [{ y: 1, label: 'no better than the teacher' }] });
    chart(path.join(publish, `${name}-dm-vs-reg.png`), `${name}: |DM gradient| / |regression gradient| (samples)`, 'iteration', 'norm ratio', [...per((l) => l.normRatio), { name: 'in G\'s weights', dashed: true, points: pts.map((p) => [p.step, p.diagnostics!.weightsNormRatio]) }]);
    chart(path.join(publish, `${name}-dm-cosine.png`), `${name}: cosine of DM and regression gradients`, 'iteration', 'cosine', [...per((l) => l.cosine), { name: 'in G\'s weights', dashed: true, points: pts.map((p) => [p.step, p.diagnostics!.weightsCosine]) }]);
  }
  log(`wrote ${publish}`);
}

/**
 * A new machine has the published curves but no runs: each curve's points go back into --out so that
 * `report` keeps them and `eval` adds to them; a run whose directory is already there (being re-run) keeps
 * its published points as NAME-run1 instead. Calibration and compare.json come back too where missing.
 */
function restore(): void {
  const pub = JSON.parse(readFileSync(path.join(publish, 'curves.json'), 'utf8')) as { calibration: Record<string, unknown>; curves: Record<string, { points: (CurvePoint & { minutes?: number })[] }> };
  ensureDir(out, '--out');
  const calFile = path.join(out, 'calibration.json');
  if (!existsSync(calFile)) atomicWrite(calFile, `${JSON.stringify(pub.calibration, null, 1)}\n`);
  if (!existsSync(path.join(out, 'compare.json')) && existsSync(path.join(publish, 'compare.json'))) atomicWrite(path.join(out, 'compare.json'), readFileSync(path.join(publish, 'compare.json'), 'utf8'));
  for (const [name, { points }] of Object.entries(pub.curves)) {
    const to = existsSync(runDir(name)) && !name.endsWith('-run1') ? `${name}-run1` : name;
    if (existsSync(curveFile(to))) { log(`${to}: kept (${curveFile(to)} exists)`); continue; }
    ensureDir(path.dirname(curveFile(to)), '--out');
    atomicWrite(curveFile(to), points.map(({ minutes: _, ...p }) => `${JSON.stringify(p)}\n`).join(''));
    log(`${to}: ${points.length} points restored${to !== name ? ` (${name} is being re-run)` : ''}`);
  }
}

/**
 * How strongly a GAN run's generator term pulls beside its regression: on 64 probe pairs, both gradients
 * back-propagated into the generator's samples with their weights in the run (--weight W: the GAN's at W
 * instead), as the batch norm ratio |GAN| / |regression| and the per-sample cosine, over 8 draws of the
 * diffusion GAN's noise (one draw without it); with the head's mean realism on those samples.
 */
async function ganShare(spec: string): Promise<void> {
  const [name, at] = spec.split('@') as [string, string | undefined];
  const c = checkpoints(name).list().find((k) => k.step === Number(at));
  if (!c) throw new Error(`ganshare: ${name} has no checkpoint at iteration ${at}`);
  const tr = new DMDTrainer(await settings(name, { steps: 1e9 }), () => {});
  if (!tr.critic?.head) throw new Error(`ganshare: ${name} trains no GAN head`);
  restoreCheckpoint(tr, c.file);
  const w = Number(opt('weight', String(tr.cfg.ganGenWeight)));
  const pairs = new PairsDataset(((await resolveAutoPairs({ ...shared, pairs: 'auto' }, () => {})).pairs) as string);
  const { rows, weights } = tidy(() => {
    const pb = pairs.batch(64, Generator.create('cpu', 1234), 'cpu');
    const cond = tr.G.conditionsOf(pb.index);
    const x = noGrad(() => tr.generator.forward(pb.z, cond)).detach().requiresGrad_(true);
    const [rg] = autograd.grad(regressionLoss(tr.cfg.regression, x, pb.y).mul(tr.cfg.lambdaReg), x);
    const reg = rg!.detach();
    // the head sees clean samples unless the run noises them first (--diffusion-gan): one draw then suffices
    const rows = Array.from({ length: tr.cfg.diffusionGan ? 8 : 1 }, () => tidy(() => {
      const logits = tr.critic!.ganLogits(x, cond);
      const [gg] = autograd.grad(ganGeneratorLoss(logits).mul(w), x);
      const { cosine, normRatio } = compareSampleGradients(gg!.detach(), reg);
      return { ratio: normRatio, cos: cosine, realism: logits.detach().sigmoid().mean().item() };
    }));
    // in the generator's weights (what the optimizer sees): one forward, the two terms back-propagated separately
    const params = tr.generator.parameters();
    const xg = tr.generator.forward(pb.z, cond);
    const ga = autograd.grad(ganGeneratorLoss(tr.critic!.ganLogits(xg, cond)).mul(w), params, { retainGraph: true, allowUnused: true });
    const gb = autograd.grad(regressionLoss(tr.cfg.regression, xg, pb.y).mul(tr.cfg.lambdaReg), params, { allowUnused: true });
    const c = compareWeightGradients(ga, gb, params);
    return { rows, weights: { ratio: c.normRatio, cos: c.cosine } };
  });
  const mean = (k: 'ratio' | 'cos' | 'realism') => rows.reduce((a, r) => a + r[k], 0) / rows.length;
  log(`${name} @ ${c.step}, GAN weight ${w}: |GAN| / |regression| in the samples ${mean('ratio').toFixed(4)} (draws ${rows.map((r) => r.ratio.toFixed(4)).join(' ')}), cosine ${mean('cos').toFixed(3)}; in G's weights ${weights.ratio.toFixed(4)}, cosine ${weights.cos.toFixed(3)}; head realism of G's samples ${mean('realism').toFixed(3)}`);
  tr.dispose();
}

/**
 * What a short averaging window would have exported: the uniform average of G's weights over the
 * checkpoints S1, S2, ... of RUN, scored like `eval` (1000 samples, seed 0), into averages.json.
 */
async function averageRun(spec: string): Promise<void> {
  const [name, stepsText] = spec.split('@');
  const steps = stepsText!.split(',').map(Number);
  const list = checkpoints(name!).list();
  const tr = new DMDTrainer(await settings(name!, { steps: 1e9 }), () => {});
  let avg: ScoreModel | null = null;
  for (const [k, step] of steps.entries()) {
    const c = list.find((q) => q.step === step);
    if (!c) throw new Error(`${name} has no checkpoint at ${step}`);
    restoreCheckpoint(tr, c.file);
    if (!avg) avg = tr.G.clone().eval().requiresGrad_(false);
    else noGrad(() => foreach.lerp_(avg!.parameters(), tr.G.parameters(), 1 / (k + 1)));
  }
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'budget-avg-'));
  avg!.saveGenerator(path.join(tmp, 'avg.safetensors'), tr.generator.level, {});
  avg!.dispose();
  tr.dispose();
  const r = await scoreGenerator(path.join(tmp, 'avg.safetensors'), 1000, 0);
  rmSync(tmp, { recursive: true, force: true });
  const file = path.join(out, 'averages.json');
  const all = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as unknown[]) : [];
  all.push({ run: name, steps, 'FD-fmnist': r['FD-fmnist'], precision: r.precision, recall: r.recall });
  atomicWrite(file, `${JSON.stringify(all, null, 1)}\n`);
  log(`${spec}: uniform average of G, FD ${r['FD-fmnist']!.toFixed(3)} (precision ${r.precision!.toFixed(3)}, recall ${r.recall!.toFixed(3)})`);
}

/**
 * Regression pairs whose targets are real images (item 24): Fashion-MNIST images (--split test: t10k,
 * images the evaluation's reference set does not hold) carried up the teacher's probability-flow ODE
 * (Heun, EDM's 18 levels run upwards from sigma 0.002 to 80) to their noise z, written as a pairs
 * directory (z, label, y = the real image) that `--pairs DIR` reads. Reports how Gaussian the z are and how
 * far the teacher's ODE brings each z back to its image (the inversion's round-trip error).
 */
async function invertPairs(): Promise<void> {
  const split = opt('split', 'test');
  const count = Number(opt('count', '1024'));
  const dir = path.join(out, `pairs-inverted-${split}-${count}`);
  ensureDir(dir, '--out');
  const teacherFile = defaultTeacherPath();
  const net = loadEDM(teacherFile, { device: 'cpu' });
  const D = denoiser(net);
  const levels = karrasSteps(18).slice(0, -1).reverse(); // 0.002 .. 80
  const source = openDataset(split === 'test' ? 'fashion-mnist:test' : 'fashion-mnist');
  const loader = new ImageLoader(source, { batchSize: 128, resolution: net.config.img_resolution, channels: net.config.img_channels, numClasses: net.config.label_dim, shuffle: false });
  const sha = pathSha256(teacherFile);
  const shardSize = 256;
  const shards: { file: string; start: number; count: number; complete: boolean }[] = [];
  let roundTrip = 0, zSum = 0, zSq = 0;
  const t0 = Date.now();
  for (let start = 0; start < count; start += shardSize) {
    const n = Math.min(shardSize, count - start);
    const parts: { z: Tensor; y: Tensor; label: Tensor }[] = [];
    for (let b = 0; b < n; b += 128) {
      const m = Math.min(128, n - b);
      const batch = loader.batch(Array.from({ length: m }, (_, k) => start + b + k));
      parts.push(noGrad(() => tidy(() => {
        let x = batch.images.to('float64');
        for (let i = 0; i + 1 < levels.length; i++) {
          const [t, tn] = [levels[i]!, levels[i + 1]!];
          const d = x.sub(D(x, t, batch.labels).to('float64')).div(t);
          const x1 = x.add(d.mul(tn - t));
          const d2 = x1.sub(D(x1, tn, batch.labels).to('float64')).div(tn);
          x = x.add(d.add(d2).mul(0.5 * (tn - t)));
        }
        const z = x.div(levels[levels.length - 1]!).to('float32');
        const back = edmSample(D, z, batch.labels, karrasSteps(18)).x.to('float32');
        roundTrip += back.sub(batch.images).flatten(1).norm(2, [1]).sum().item();
        zSum += z.sum().item();
        zSq += z.square().sum().item();
        return { z, y: batch.images.clone(), label: batch.labels!.argmax(1) };
      })));
      dispose([batch.images, batch.labels]);
      log(`inverted ${start + b + m} / ${count} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
    const file = `pairs-${String(shards.length).padStart(5, '0')}.safetensors`;
    tidy(() => writeSafetensors(path.join(dir, file), { z: cat(parts.map((p) => p.z)), label: cat(parts.map((p) => p.label)), y: cat(parts.map((p) => p.y)) }, { start: String(start), teacher_sha256: sha }, 'pairs shard'));
    for (const p of parts) dispose([p.z, p.y, p.label]);
    shards.push({ file, start, count: n, complete: true });
  }
  net.dispose();
  const manifest = {
    format: 'dmd-torch/pairs', version: 1, teacher: { file: teacherFile, sha256: sha },
    sampler: { solver: 'heun', numSteps: 18, sigmaMin: 0.002, sigmaMax: 80, rho: 7, guidance: 1, nfe: 35 },
    seed: 0, count, shardSize, labels: 'random', imageShape: [net.config.img_channels, net.config.img_resolution, net.config.img_resolution], labelDim: net.config.label_dim, shards,
  };
  atomicWrite(path.join(dir, 'pairs.json'), `${JSON.stringify(manifest, null, 1)}\n`);
  const numel = count * manifest.imageShape.reduce((a, b) => a * b, 1);
  const mean = zSum / numel;
  log(`${dir}: ${count} inverted pairs in ${((Date.now() - t0) / 60000).toFixed(1)} min; z mean ${mean.toFixed(4)}, std ${Math.sqrt(zSq / numel - mean ** 2).toFixed(4)}; round trip |ODE(z) - x| ${(roundTrip / count).toFixed(3)}`);
}

if (mode === 'train') await train(id!);
else if (mode === 'invert') await invertPairs();
else if (mode === 'average') await averageRun(id!);
else if (mode === 'eval') await evalRun(id!);
else if (mode === 'calibrate') await calibrate(id ? id.split(',') : [...Object.keys(PRESETS).filter((n) => !PRESETS[n]!.costAs), 'fake-warmup', 'teacher-gan-warmup']);
else if (mode === 'report') report();
else if (mode === 'ganshare') await ganShare(id!);
else if (mode === 'restore') restore();
else if (mode === 'compare') await compare(argv.slice(1).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--')));
else {
  console.error('usage: fmnist-budget.ts train ID [--steps N --every N] | eval ID [--at S1,S2] [--ema-only] | compare RUN@STEP ... [--num N --seeds S1,S2 --which G] | calibrate [IDS] | ganshare RUN@STEP [--weight W] | average RUN@S1,S2 | invert [--split test --count N] | report | restore');
  process.exit(2);
}
