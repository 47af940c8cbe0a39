// The DMD trainer (DMD, Yin et al. 2024; DMD2's two time-scale update rule and GAN option) over any
// teacher family (score-model.ts). An iteration has DMD's two turns, as phases.ts schedules them:
// - the generator turn: the one-step generator G (generator.ts) moves along the distribution-matching
//   gradient of the critic (critic.ts: real minus fake score), plus the regression term on teacher
//   pairs (regression/) and DMD2's GAN term, with the critic frozen;
// - the fake-score turn: the fake score learns to denoise G's detached samples, the GAN head to tell
//   them from real data. `train()` is a run of train/run.ts (checkpoints, resume, grids, evaluations).
import { Tensor } from '../tensor/tensor.js';
import { tidy, dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { Generator, deriveSeed } from '../tensor/random.js';
import { foreach } from '../tensor/foreach.js';
import type { Device } from '../tensor/device.js';
import { AdamW } from '../nn/optim.js';
import { warmup, withLinearDecay, type Schedule } from '../nn/schedule.js';
import { openRealData, type RealData } from './real-data.js';
import { saveGrid } from '../data/grid.js';
import type { RunHooks } from '../train/run.js';
import { readScalars } from '../train/metrics.js';
import { TrainState } from '../train/state.js';
import type { Distributed } from '../distributed/context.js';
import type { DMDConfig } from './config.js';
import { applyRecipe } from './recipes.js';
import { resolveAutoPairs } from './regression/auto-pairs.js';
import { RegressionTerm } from './regression/term.js';
import { ganGeneratorLoss } from './losses.js';
import { Critic } from './critic.js';
import { OneStepGenerator } from './generator.js';
import { RankRandom } from './rng.js';
import { parseDMDSettings, joinRun, loadTeacher, runFingerprint, DMDSetupError, type LoadedTeacher } from './setup.js';
import { firstSamples, type Conditioning, type NoiseSchedule, type ScoreModel } from './score-model.js';
import { describeDMD, trainDMD, type DMDRunResult } from './run.js';
import { phaseOf, turnsOf, type DMDPhase } from './phases.js';

export { DMDSetupError };
export type { DMDRunResult } from './run.js';

export type StepMetrics = Record<string, number>;

export class DMDTrainer {
  readonly cfg: DMDConfig;
  readonly device: Device;
  /** this process's place in a data-parallel job (world size 1 without one) */
  readonly dist: Distributed;
  readonly teacher: LoadedTeacher;
  readonly schedule: NoiseSchedule;
  readonly generator: OneStepGenerator;
  /** real score, fake score and GAN head; null for regression only (no fake score is trained) */
  readonly critic: Critic | null;
  readonly regression: RegressionTerm | null;
  /** real samples of the GAN (images, or latents of `dmd latents`), read as global batches of which each process keeps its slice */
  readonly data: RealData | null;
  readonly optG: AdamW;
  readonly optF: AdamW | null;
  /** every draw of an iteration (conditioning, z, noise levels, noise) */
  readonly rng: RankRandom;
  /** the regression batches' indices */
  readonly pairsRng: Generator;
  /** everything a checkpoint holds */
  readonly state: TrainState;
  step = 0;
  /** wall seconds of the last generator turn and fake-score turn (on CUDA: synchronise first to time kernels) */
  readonly turnSeconds = { generator: 0, fakeScore: 0 };
  private trained = false;
  private readonly criticParams: Tensor[];
  private readonly lrScale: { gen: Schedule; fake: Schedule }; // by 1-based iteration; gen with --lr-decay's fall
  /** the sample grids' noise and conditioning, and the grid's columns */
  private readonly fixed: { z: Tensor; cond: Conditioning; columns?: number };

  /**
   * The trainer for settings as the command line takes them: the recipe's defaults filled in and
   * `pairs: 'auto'` made (or found in the cache) first. The constructor takes resolved settings.
   */
  static async create(config: Partial<DMDConfig> & Record<string, unknown>, log: (s: string) => void = console.log): Promise<DMDTrainer> {
    return new DMDTrainer(await resolveAutoPairs(applyRecipe(config, { notice: (s) => log(`note: ${s}`) }) as Partial<DMDConfig> & Record<string, unknown>, log), log);
  }

  /** Loads and checks everything a run needs before the first step. `o.teacher`: a teacher model in memory instead of cfg.teacher. */
  constructor(config: Partial<DMDConfig> & Record<string, unknown>, log: (s: string) => void = console.log, o: { teacher?: ScoreModel } = {}) {
    const cfg = (this.cfg = parseDMDSettings(config, { teacherInMemory: !!o.teacher }));
    const place = joinRun(cfg);
    ({ dist: this.dist, device: this.device } = place);
    const d = this.device;
    this.teacher = loadTeacher(cfg, d, log, o.teacher);
    const real = this.teacher.model;
    this.dist.agree('dmd-train settings', runFingerprint(cfg, this.teacher));
    this.generator = new OneStepGenerator(real, { level: real.generatorLevel(cfg), dtype: cfg.dtype, emaDecay: cfg.emaDecay, dropout: cfg.dropout });
    this.schedule = real.schedule(cfg);
    this.rng = new RankRandom(Generator.create(d, deriveSeed(place.rankSeed, 11)), d, this.dist, place.sameNoise);
    this.pairsRng = Generator.create('cpu', deriveSeed(place.rankSeed, 12));
    this.regression = cfg.pairs
      ? new RegressionTerm({ ...cfg, pairs: cfg.pairs }, { path: this.teacher.path, sha256: this.teacher.fromFile ? this.teacher.sha256 : null, sampleShape: real.sampleShape, conditionDim: real.conditionDim, prompts: this.teacher.prompts }, this.pairsRng, this.rng, d)
      : null;
    this.critic = cfg.lambdaDm > 0 || cfg.gan ? new Critic(real, this.schedule, this.rng, cfg) : null;
    // every rank reads the global batch in the same order and keeps its slice: the data are partitioned
    this.data = this.critic?.head
      ? openRealData(cfg.data!, { real, teacher: this.teacher, globalBatch: cfg.batchSize * this.dist.size, seed: cfg.seed, device: d, notice: this.dist.isMain ? log : undefined })
      : null;
    const adam = { betas: cfg.betas as [number, number], weightDecay: cfg.weightDecay };
    this.criticParams = this.critic?.parameters() ?? [];
    this.optG = new AdamW(this.generator.parameters(), { lr: cfg.genLr, ...adam });
    this.optF = this.critic ? new AdamW(this.criticParams, { lr: cfg.fakeLr, ...adam }) : null;
    const rise = warmup(cfg.warmupSteps);
    this.lrScale = { gen: withLinearDecay(rise, cfg.steps, cfg.lrDecay), fake: rise };
    this.fixed = real.gridInputs(deriveSeed(cfg.seed, 13));
    this.state = this.checkpointState();
  }

  private checkpointState(): TrainState {
    const s = new TrainState(this.device).module('G', this.generator.G);
    for (const [name, part] of this.critic?.stateParts() ?? []) s.module(name, part);
    if (this.generator.ema) s.module('ema', this.generator.ema);
    s.optimizer('optG', this.optG);
    if (this.optF) s.optimizer('optF', this.optF);
    return s
      .generator('gen', this.rng.gen)
      .generator('pairs', this.pairsRng)
      .value('step', () => this.step, (v) => { this.step = v; })
      .value('data', () => this.data?.state() ?? null, (v) => { if (v && this.data) this.data.loadState(v); });
  }

  get real(): ScoreModel { return this.teacher.model; }
  get G(): ScoreModel { return this.generator.G; }
  get ema(): ScoreModel | null { return this.generator.ema; }
  get labelDim(): number { return this.real.conditionDim; }

  /** The phase of an iteration (phases.ts). */
  phase(step = this.step): DMDPhase { return phaseOf(step, this.cfg); }

  /** One iteration: its turns as phases.ts schedules them; the fake score's lr warm-up counts from its first update. */
  iteration(): StepMetrics {
    const cfg = this.cfg;
    const { phase, generator: generatorTurn, fake: fakeTurn } = turnsOf(this.step, cfg, !!this.critic);
    const scale = this.lrScale.gen(this.step + 1);
    const fakeScale = this.lrScale.fake(this.step + 1 - cfg.dmStart);
    const out = tidy(() => {
      const m: Record<string, Tensor> = {};
      const B = cfg.batchSize;
      const cond = this.real.randomConditions(B, (lo, hi, n) => this.rng.randint(lo, hi, n));
      const z = this.rng.randn([B, ...this.real.sampleShape]);
      const t0 = performance.now();
      const noise = firstSamples({ x: z, cond }, cfg.ganBatchSize || B);
      const judged = generatorTurn ? this.generatorTurn(noise, scale, m, phase === 'regression') : { x: noGrad(() => this.generator.forward(noise.x, noise.cond)), cond: noise.cond };
      const t1 = performance.now();
      if (fakeTurn) this.fakeScoreTurn(judged!.x, judged!.cond, fakeScale, m);
      this.turnSeconds.generator = generatorTurn ? (t1 - t0) / 1000 : 0;
      this.turnSeconds.fakeScore = (performance.now() - t1) / 1000;
      return m;
    });
    this.step += 1;
    return { gen_update: generatorTurn ? 1 : 0, lr_scale: scale, ...readScalars(out, this.dist) };
  }

  /**
   * The generator's update: DM, regression and the GAN term, back-propagated with the critic frozen (`regressionOnly`:
   * the regression phase). Returns what the critic judges: G's fresh samples of `noise`, or the regression batch's
   * (its first --gan-batch-size; null: no critic).
   */
  private generatorTurn(noise: { x: Tensor; cond: Conditioning }, scale: number, m: Record<string, Tensor>, regressionOnly = false): { x: Tensor; cond: Conditioning } | null {
    const cfg = this.cfg;
    const critic = regressionOnly ? null : this.critic;
    let judged = critic && cfg.ganSamples === 'fresh' ? { x: this.generator.forward(noise.x, noise.cond), cond: noise.cond } : null;
    const backward = () => {
      const terms: Tensor[] = [];
      if (critic && cfg.lambdaDm > 0) {
        const dm = critic.distributionMatching(judged!.x, judged!.cond);
        m.loss_dm = dm.loss;
        m.dm_grad_norm = dm.grad.norm();
        terms.push(cfg.lambdaDm === 1 ? dm.loss : dm.loss.mul(cfg.lambdaDm));
      }
      if (this.regression && cfg.lambdaReg > 0) {
        const { loss, ...outputs } = this.regression.loss(this.generator, cfg.batchSize);
        terms.push((m.loss_reg = loss).mul(cfg.lambdaReg));
        judged ??= critic ? firstSamples(outputs, noise.x.shape[0]!) : null;
      }
      if (critic?.head && cfg.ganGenWeight > 0) terms.push((m.loss_gan_gen = ganGeneratorLoss(critic.ganLogits(judged!.x, judged!.cond))).mul(cfg.ganGenWeight));
      this.optG.zeroGrad();
      if (terms.length) terms.reduce((a, b) => a.add(b)).backward();
    };
    if (critic) critic.frozen(backward);
    else backward();
    const params = this.generator.parameters();
    this.dist.averageGradients(params);
    m.gnorm_gen = foreach.clipGradNorm_(params, cfg.gradClip);
    this.optG.step(cfg.genLr * scale);
    this.optG.zeroGrad();
    this.generator.updateAverage();
    return judged;
  }

  /** The critic's update on G's detached samples: the fake score's denoising loss and the GAN head's loss. */
  private fakeScoreTurn(x: Tensor, cond: Conditioning, scale: number, m: Record<string, Tensor>): void {
    const cfg = this.cfg;
    const critic = this.critic!;
    const xd = x.detach();
    let total = critic.fakeScoreLoss(xd, cond);
    if (total) m.loss_fake = total;
    if (critic.head && this.data) {
      const b = this.data.next();
      const real = firstSamples({ x: this.rng.slice(b.x, cfg.batchSize), cond: this.rng.slice(b.cond, cfg.batchSize) }, xd.shape[0]!);
      const gan = critic.ganHeadLoss(real, { x: xd, cond });
      m.loss_gan_head = gan.loss;
      m.d_real = gan.dReal;
      m.d_fake = gan.dFake;
      total = total ? total.add(gan.loss.mul(cfg.ganHeadWeight)) : gan.loss.mul(cfg.ganHeadWeight);
    }
    this.optF!.zeroGrad();
    total!.backward();
    this.dist.averageGradients(this.criticParams);
    m.gnorm_fake = foreach.clipGradNorm_(this.criticParams, cfg.gradClip);
    this.optF!.step(cfg.fakeLr * scale);
    this.optF!.zeroGrad();
  }

  /** One-step samples of the fixed noises (EMA generator when enabled), as a PNG grid (one row per class or prompt). */
  sampleGrid(file: string): void {
    tidy(() => saveGrid(this.real.toImages(this.generator.sample(this.fixed.z, this.fixed.cond)).clamp(-1, 1), file, this.fixed.columns));
  }

  /** Writes the generator (EMA when enabled) as a standalone teacher-format file with role "generator". */
  exportGenerator(file: string, which: 'auto' | 'G' | 'ema' = 'auto'): void {
    this.generator.export(file, this.teacher, this.step, which);
  }

  /** A one-line summary of the recipe (printed at start-up). */
  describe(): string {
    return describeDMD(this);
  }

  /**
   * The full run: resume, iterations with progress, metrics.jsonl, sample grids, checkpoints, SIGINT,
   * export and the final evaluation. report.html is refreshed along the way unless other hooks are given.
   */
  train(log: (s: string) => void = console.log, o: { progress?: boolean; hooks?: RunHooks } = {}): Promise<DMDRunResult> {
    if (this.trained) return Promise.reject(new DMDSetupError('this trainer has already run train(); make a new DMDTrainer (with resume: true to continue the same run directory)'));
    this.trained = true;
    return trainDMD(this, log, o);
  }

  dispose(): void {
    for (const m of [this.real, this.critic, this.generator, this.regression, this.data]) m?.dispose();
    this.optG.dispose();
    this.optF?.dispose();
    this.schedule.dispose();
    dispose([this.fixed]);
    this.dist.destroy();
  }
}
