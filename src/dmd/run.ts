// A DMD trainer's run as train/run.ts runs it: what a checkpoint identifies the run by, the facts of
// run.json, the start-up line, the periodic FD probe, and, at the end, the exported generator and its
// evaluation beside the teacher's.
import path from 'node:path';
import { deriveSeed, randn, type Generator } from '../tensor/random.js';
import { tensor } from '../tensor/create.js';
import { readPromptRecords } from '../sd/prompts.js';
import { isCuda } from '../tensor/device.js';
import { FDProbe, type ProbeInputs } from '../metrics/probe.js';
import { finalEvaluation } from '../metrics/final-eval.js';
import { runTraining, type RunHooks, type RunResult } from '../train/run.js';
import { settingsIdentity } from '../train/settings.js';
import { schemaDefaults } from '../util/zod.js';
import { describeMemory, PeakTracker, formatBytes } from '../train/memory.js';
import { reportHooks, writeReport } from '../report/report.js';
import type { DMDPhase } from './phases.js';
import { plannedMinutes, budgetSpeedNotice } from './budget.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Device } from '../tensor/device.js';
import type { Distributed } from '../distributed/context.js';
import type { TrainState } from '../train/state.js';
import { DMDConfigSchema, type DMDConfig } from './config.js';
import type { LoadedTeacher } from './setup.js';
import type { OneStepGenerator } from './generator.js';
import type { Critic } from './critic.js';
import type { RegressionTerm } from './regression/term.js';
import type { ScoreModel } from './score-model.js';

/**
 * What a run asks of its trainer. DMDTrainer (trainer.ts) is the one there is; it is named here so that
 * the trainer imports its run and not the reverse.
 */
export interface RunTrainer {
  readonly cfg: DMDConfig;
  readonly device: Device;
  readonly dist: Distributed;
  readonly teacher: LoadedTeacher;
  readonly real: ScoreModel;
  readonly generator: OneStepGenerator;
  readonly G: ScoreModel;
  readonly ema: ScoreModel | null;
  readonly critic: Critic | null;
  readonly regression: RegressionTerm | null;
  readonly state: TrainState;
  readonly step: number;
  phase(step?: number): DMDPhase;
  iteration(): Record<string, number>;
  sampleGrid(file: string): void;
  exportGenerator(file: string): void;
}

export interface DMDRunResult extends RunResult {
  /** the exported one-step generator (rank 0 of a complete run), else null */
  generator: string | null;
}

/** A one-line summary of the recipe (printed at start-up). */
export function describeDMD(tr: RunTrainer): string {
  const cfg = tr.cfg;
  const planned = plannedMinutes(cfg, !tr.teacher.fromFile);
  const parts = [
    `teacher ${path.basename(tr.teacher.path)} (${tr.real.describe()}; ${tr.real.parameterCount()} params)`,
    ...(tr.teacher.prompts ? [`${tr.teacher.prompts.count} prompts from ${path.basename(tr.teacher.prompts.file)}${cfg.realGuidance !== 1 ? `, real guidance ${cfg.realGuidance}` : ''}`] : []),
    `generator at ${tr.real.describeLevel(tr.generator.level)}`,
    `${cfg.steps} iterations${planned !== null ? ` (planned for --budget ${planned} min of a 2-core CPU)` : ''}, batch ${cfg.batchSize}`,
    cfg.lambdaDm > 0 ? `distribution matching x${cfg.lambdaDm}, fake:gen ${cfg.fakeUpdatesPerGen}:1` : 'no distribution matching',
    tr.regression ? `regression ${cfg.regression} x${cfg.lambdaReg} on ${tr.regression.size} pairs` : 'no regression loss (no --pairs)',
  ];
  if (cfg.dmStart > 0) parts.push(`regression alone for the first ${cfg.dmStart} iterations`);
  const head = tr.critic?.head;
  if (cfg.fakeWarmup > 0) parts.push(`then ${cfg.fakeWarmup} iterations of ${tr.critic?.fake ? 'fake-score' : 'GAN-head'} warm-up`);
  if (head) parts.push(`GAN (${cfg.diffusionGan ? 'diffusion ' : ''}head on the ${cfg.ganFeatures === 'teacher' ? "frozen teacher's" : "fake score's"} ${head.channels}-channel bottleneck, real images ${cfg.data}${cfg.ganSamples === 'pairs' ? ", judging the regression batch's outputs" : ''}${cfg.ganBatchSize && cfg.ganBatchSize < cfg.batchSize ? `, ${cfg.ganBatchSize} samples of the batch` : ''})`);
  if (cfg.lrDecay > 0) parts.push(`generator lr ${cfg.genLr} falling linearly to 0 over the last ${cfg.lrDecay} iterations`);
  if (tr.ema) parts.push(`EMA ${cfg.emaDecay}`);
  if (tr.teacher.memory) parts.push(`estimated peak memory per process ${describeMemory(tr.teacher.memory, cfg.batchSize)}`);
  parts.push(`${tr.device} ${cfg.dtype}${isCuda(tr.device) ? `, TF32 ${cfg.tf32 ? 'on' : 'off'}` : ''}${cfg.deterministic ? ', deterministic kernels' : ''}`);
  if (tr.dist.size > 1) parts.push(`${tr.dist.size} processes (${tr.dist.backend}), global batch ${cfg.batchSize * tr.dist.size}`);
  return `DMD: ${parts.join(', ')}`;
}

/**
 * The probe's inputs for a text-to-image teacher: latent noise and the training prompts cycled (sample i
 * asks for prompt i mod P, as `dmd eval` does), with each prompt's "class" when the file gives one.
 */
function promptInputs(tr: RunTrainer, file: string): (first: number, n: number, g: Generator) => ProbeInputs {
  const records = readPromptRecords(file);
  return (first, n, g) => {
    const idx = Array.from({ length: n }, (_, i) => (first + i) % records.length);
    return { z: randn([n, ...tr.real.sampleShape], { generator: g }).to(tr.device), cond: tensor(idx, { dtype: 'int64' }), classes: idx.map((i) => records[i]!.class ?? null) };
  };
}

/** The full run of a trainer (see DMDTrainer.train). */
export async function trainDMD(tr: RunTrainer, log: (s: string) => void, o: { progress?: boolean; hooks?: RunHooks }): Promise<DMDRunResult> {
  const cfg = tr.cfg;
  const main = tr.dist.isMain;
  if (main) log(describeDMD(tr));
  const probe = cfg.evalEvery > 0 && main
    ? FDProbe.create({ classifier: cfg.classifier, ref: cfg.evalRef, refNum: cfg.evalRefNum, num: cfg.evalNum, seed: deriveSeed(cfg.seed, 14), device: tr.device, config: tr.real.imageSpec, inputs: tr.teacher.prompts && promptInputs(tr, tr.teacher.prompts.file) })
    : null;
  // SD: the probe keeps prompt indices and looks their embeddings up per batch (not held between evaluations)
  const probeSample = (z: Tensor, cond: Tensor | null): Tensor => tr.real.toImages(tr.generator.sample(z, tr.teacher.prompts ? tr.real.conditionsOf(cond) : cond));
  const memory = main && tr.teacher.memory ? new PeakTracker(tr.device) : null;
  const planned = main ? plannedMinutes(cfg, !tr.teacher.fromFile) : null;
  const speed = planned !== null ? budgetSpeedCheck(planned, tr, log) : null;
  try {
    const r = await runTraining(cfg, {
      kind: 'dmd',
      label: 'dmd',
      total: cfg.steps,
      state: tr.state,
      position: () => tr.step,
      identity: { ...settingsIdentity(cfg, ['steps', 'teacher', 'prompts']), teacher_sha256: tr.teacher.sha256, ...(tr.teacher.prompts && { prompts_sha256: tr.teacher.prompts.sha256 }) },
      // checkpoints written before a setting existed resume while it is left at its default
      identityDefaults: schemaDefaults(DMDConfigSchema),
      config: cfg,
      info: {
        device: tr.device, dtype: cfg.dtype, tf32: isCuda(tr.device) ? cfg.tf32 : 'n/a (CPU)', deterministic: cfg.deterministic, teacher: tr.teacher.path, teacher_sha256: tr.teacher.sha256,
        parameters: tr.real.parameterCount(), batch: cfg.batchSize, processes: tr.dist.size, distributed_backend: tr.dist.backend,
        global_batch: cfg.batchSize * tr.dist.size, recipe: describeDMD(tr),
      },
      dist: tr.dist,
      // identical weights on every rank is an invariant: rank 0's are broadcast at the start and after a resume
      start: () => tr.dist.broadcastModules([tr.G, tr.critic?.fake ?? null, tr.critic?.head ?? null, tr.ema]),
      finite: ['loss_dm', 'loss_reg', 'loss_fake', 'loss_gan_gen', 'loss_gan_head'],
      step: () => {
        const m = tr.iteration();
        speed?.();
        return m;
      },
      shown: (m) => ({ ...(m.loss_fake !== undefined && { fake: m.loss_fake }), ...(m.loss_dm !== undefined && { dm: m.loss_dm }), ...(m.loss_reg !== undefined && { reg: m.loss_reg }) }),
      sample: (file) => (memory ? memory.aside(() => tr.sampleGrid(file)) : tr.sampleGrid(file)),
      evaluate: probe ? { every: cfg.evalEvery, run: () => probe.run(probeSample) } : undefined,
    }, log, { progress: o.progress, hooks: o.hooks ?? reportHooks(cfg.out) });
    const peak = memory?.peak();
    if (peak) {
      const est = tr.teacher.memory!.fixedBytes + cfg.batchSize * tr.teacher.memory!.perSampleBytes;
      log(`memory: ${peak.what} during the iterations ${formatBytes(peak.bytes)} (${formatBytes(memory!.atStart!)} in use when they began; sample grids left out); estimated at start-up ${formatBytes(est)}`);
    }
    return { ...r, generator: r.status === 'done' && main ? await finish(tr, log) : null };
  } finally {
    probe?.dispose();
  }
}

/**
 * For a run planned by --budget: times iterations 6 to 30 of this process's run and, once, says so when
 * this machine is far from the speed the plan assumed (budget.ts).
 */
function budgetSpeedCheck(minutes: number, tr: RunTrainer, log: (s: string) => void): () => void {
  const first = 5;
  const last = 30;
  let n = 0;
  let t0 = 0;
  let phase: DMDPhase | null = null;
  // what an iteration costs: a run without a critic (regression only) is in no DMD phase
  const kind = (step?: number): DMDPhase => (tr.critic ? tr.phase(step) : 'regression');
  return () => {
    n += 1;
    if (n === first) {
      t0 = performance.now();
      phase = kind();
    } else if (n === last && phase === kind(tr.step - 1)) {
      const note = budgetSpeedNotice(minutes, phase, (performance.now() - t0) / 1000 / (last - first), { gan: tr.cfg.gan, ganFeatures: tr.cfg.ganFeatures, ganBatchSize: tr.cfg.ganBatchSize });
      if (note) log(note);
    }
  };
}

/** Exports the generator and evaluates it beside the teacher's figures (rank 0, after a complete run). */
async function finish(tr: RunTrainer, log: (s: string) => void): Promise<string> {
  const cfg = tr.cfg;
  const file = path.join(cfg.out, 'generator.safetensors');
  tr.exportGenerator(file);
  const how = tr.teacher.prompts ? `--prompt "..." --out grid.png (an SD v1 checkpoint: the distilled UNet with the teacher's VAE and text encoder)` : '--out grid.png';
  log(`wrote ${file} (one-step generator, ${tr.real.describeLevel(tr.generator.level)}); sample it with: npx dmd sample --generator ${file} ${how}`);
  if (cfg.finalEval > 0) {
    const r = await finalEvaluation({ generator: file, teacherPath: tr.teacher.path, spec: tr.real.imageSpec, prompts: tr.teacher.prompts?.file, num: cfg.finalEval, ref: cfg.evalRef, refNum: cfg.evalRefNum, classifier: cfg.classifier, seed: cfg.seed, device: tr.device, out: cfg.out }, log);
    if (r) writeReport(cfg.out);
  }
  return file;
}
