// The DMD trainer (DMD, Yin et al. 2024; DMD2's two time-scale update rule and GAN option): the
// frozen real score (the teacher), a fake score trained online on generator samples, and a one-step
// generator G(z) = D_G(sigma_c z; sigma_c) trained with the distribution-matching gradient, an
// optional regression loss on teacher ODE pairs, and an optional GAN loss through a classifier head
// on the fake score's bottleneck. All three networks start as copies of the teacher. `train()` is a
// run of train/run.ts (checkpoints, exact resume, grids, metrics, evaluations).
import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { Tensor } from '../tensor/tensor.js';
import { tidy, keep, dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { randn, randint, Generator, deriveSeed } from '../tensor/random.js';
import { stack } from '../tensor/create.js';
import { foreach } from '../tensor/foreach.js';
import { type Device, isCuda, configureKernels } from '../tensor/device.js';
import { AdamW } from '../nn/optim.js';
import { EMA } from '../nn/ema.js';
import { warmup } from '../nn/schedule.js';
import { oneHot } from '../nn/functional.js';
import { EDMNetwork, checkExecutionDType, trainingBytesPerImage } from '../edm/network.js';
import { loadEDM, readEDMInfo } from '../edm/checkpoint.js';
import { karrasTable } from '../edm/sigmas.js';
import { defaultTeacherPath } from '../edm/default-teacher.js';
import { PairsDataset } from '../edm/pairs.js';
import { generate, saveGenerator } from '../edm/one-step.js';
import { denoiser, type Denoiser } from '../edm/guidance.js';
import { ImageLoader } from '../data/loader.js';
import { openDataset } from '../data/sources.js';
import { saveGrid, gridInputs } from '../data/grid.js';
import { LPIPS } from '../metrics/lpips.js';
import { regressionLoss } from '../metrics/regression.js';
import { FDProbe } from '../metrics/probe.js';
import { evaluate, EvalConfigSchema, type EvalResult } from '../metrics/evaluate.js';
import { fileSha256 } from '../util/fs.js';
import { formatZodError } from '../util/zod.js';
import { runTraining, type RunResult } from '../train/run.js';
import { settingsIdentity } from '../train/settings.js';
import { TrainState } from '../train/state.js';
import { Distributed } from '../distributed/context.js';
import { writeReport } from '../report/report.js';
import { checkBatchMemory } from '../train/memory.js';
import { DMDConfigSchema, type DMDConfig } from './config.js';
import { applyRecipe } from './recipes.js';
import { resolveAutoPairs } from './auto-pairs.js';
import { distributionMatchingLoss, fakeScoreLoss, ganGeneratorLoss, ganHeadLoss } from './losses.js';
import { GanHead } from './head.js';

export class DMDSetupError extends Error {
  readonly code = 'ERR_DMD_SETUP';
}

export type StepMetrics = Record<string, number>;

export interface DMDRunResult extends RunResult {
  generator: string | null;
}

export class DMDTrainer {
  readonly cfg: DMDConfig;
  readonly device: Device;
  readonly teacherPath: string;
  /** SHA-256 of the teacher file (what pairs and checkpoints are checked against) */
  readonly teacherSha256: string;
  readonly real: EDMNetwork;
  readonly fake: EDMNetwork;
  readonly G: EDMNetwork;
  readonly ema: EDMNetwork | null;
  readonly head: GanHead | null;
  readonly lpips: LPIPS | null;
  readonly pairs: PairsDataset | null;
  readonly data: ImageLoader | null;
  readonly optG: AdamW;
  readonly optF: AdamW;
  /** 1000 Karras sigmas, ascending */
  readonly table: Tensor;
  /** all randomness of an iteration (labels, z, noise levels, noise) */
  readonly gen: Generator;
  /** regression batch indices */
  readonly pairsGen: Generator;
  /** everything a checkpoint holds */
  readonly state: TrainState;
  step = 0;
  private readonly realFn: Denoiser;
  private readonly fakeFn: Denoiser;
  private readonly fakeParams: Tensor[];
  private readonly emaUpdate: EMA<EDMNetwork> | null;
  private readonly schedule: (s: number) => number;
  private readonly fixed: { z: Tensor; labels: Tensor | null };
  /** whether the fake score is trained at all (not for regression only) */
  private readonly fakeOn: boolean;
  /** this process's place in a data-parallel job (world size 1 without one) */
  readonly dist: Distributed;
  private readonly sameNoise: boolean = false;
  private readonly rankSeed: number;

  /**
   * The trainer for settings as the command line takes them: the recipe's defaults filled in and
   * `pairs: 'auto'` made (or found in the cache) first. The constructor takes resolved settings.
   */
  static async create(config: Partial<DMDConfig> & Record<string, unknown>, log: (s: string) => void = console.log): Promise<DMDTrainer> {
    return new DMDTrainer(await resolveAutoPairs(applyRecipe(config) as Partial<DMDConfig> & Record<string, unknown>, log), log);
  }

  /** Loads and checks everything a run needs before the first step (clear errors at start-up). */
  constructor(config: Partial<DMDConfig> & Record<string, unknown>, log: (s: string) => void = console.log, o: { teacherNet?: EDMNetwork } = {}) {
    const parsed = DMDConfigSchema.strict().safeParse(applyRecipe(config));
    if (!parsed.success) throw new DMDSetupError(`invalid DMD settings: ${formatZodError(parsed.error)}`);
    const cfg = parsed.data;
    this.cfg = cfg;
    // before any network is loaded: the constructor cannot make the pairs (DMDTrainer.create does)
    if (cfg.pairs === 'auto') throw new DMDSetupError("--pairs auto must be resolved before the trainer is built: use await DMDTrainer.create(settings) (dmd-train does), or give a pairs directory");
    ({ dist: this.dist, device: this.device } = Distributed.forCommand(cfg));
    if (cfg.distSameNoise && this.dist.size > 1) this.sameNoise = true;
    // per-process random streams (rank 0's are those of a single-process run); the test mode draws the
    // global batch's randomness on every rank and takes this rank's slice
    this.rankSeed = this.dist.rank && !this.sameNoise ? deriveSeed(cfg.seed, 1_000_000 + this.dist.rank) : cfg.seed;
    checkExecutionDType(this.device, cfg.dtype);
    configureKernels(this.device, cfg);
    if (cfg.minStepPercent > cfg.maxStepPercent) throw new DMDSetupError('--min-step-percent must not exceed --max-step-percent');
    if (cfg.sigmaMin >= cfg.sigmaMax) throw new DMDSetupError(`--sigma-min (${cfg.sigmaMin}) must be below --sigma-max (${cfg.sigmaMax})`);
    if (cfg.regression === 'lpips' && cfg.pairs && !cfg.lpips)
      throw new DMDSetupError('--regression lpips needs LPIPS weights: pass --lpips <file from scripts/convert-lpips.py>, or choose --regression l2|l1|pseudo-huber');
    if (cfg.gan && !cfg.data) throw new DMDSetupError('--gan needs real images: pass --data (e.g. fashion-mnist)');
    if (cfg.lambdaDm === 0 && !(cfg.pairs && cfg.lambdaReg > 0) && !cfg.gan)
      throw new DMDSetupError('--lambda-dm 0 leaves no loss for the generator: give --pairs (regression only) or --gan');
    const d = this.device;
    if (o.teacherNet) {
      this.teacherPath = '<in-memory teacher>';
      this.teacherSha256 = '<in-memory teacher>';
      this.real = o.teacherNet.clone();
    } else {
      this.teacherPath = path.resolve(cfg.teacher ?? defaultTeacherPath());
      if (readEDMInfo(this.teacherPath).role === 'generator')
        throw new DMDSetupError(`--teacher ${this.teacherPath} is a one-step generator from dmd-train, not a teacher; distil from the EDM teacher it came from`);
      this.teacherSha256 = fileSha256(this.teacherPath);
      this.real = loadEDM(this.teacherPath, { device: d });
    }
    const tc = this.real.config;
    try {
      const warn = checkBatchMemory(cfg.batchSize, trainingBytesPerImage(tc, 24, cfg.dtype), d);
      if (warn) log(`warning: ${warn}`);
    } catch (e) {
      this.real.dispose();
      throw e;
    }
    if (tc.sigma_data !== 0.5) log(`teacher sigma_data ${tc.sigma_data}`);
    if (cfg.realGuidance !== 1 && tc.label_dim === 0) throw new DMDSetupError('--real-guidance needs a class-conditional teacher');
    this.real.eval().requiresGrad_(false);
    this.fake = this.real.clone();
    this.G = this.real.clone();
    for (const n of [this.fake, this.G]) {
      n.requiresGrad_(true);
      n.train(cfg.dropout);
    }
    this.ema = cfg.emaDecay > 0 ? this.G.clone().eval().requiresGrad_(false) : null;
    this.emaUpdate = this.ema ? new EMA(this.ema) : null;
    this.lpips = cfg.pairs && cfg.regression === 'lpips' ? LPIPS.load(cfg.lpips!, { device: d }) : null;
    this.pairs = cfg.pairs ? new PairsDataset(cfg.pairs) : null;
    if (this.pairs) {
      const m = this.pairs.manifest;
      const want = [tc.img_channels, tc.img_resolution, tc.img_resolution];
      if (m.imageShape.join() !== want.join() || m.labelDim !== tc.label_dim)
        throw new DMDSetupError(`${cfg.pairs}: pairs of [${m.imageShape}] with ${m.labelDim} classes do not fit the teacher ([${want}], ${tc.label_dim} classes)`);
      if (!o.teacherNet && m.teacher.sha256 !== this.teacherSha256)
        throw new DMDSetupError(
          `${cfg.pairs}: the pairs were made by another teacher (${path.basename(m.teacher.file)}, SHA-256 ${m.teacher.sha256.slice(0, 12)}...) than --teacher ` +
            `${path.basename(this.teacherPath)} (${this.teacherSha256.slice(0, 12)}...); regress onto pairs of the teacher being distilled (dmd pairs --teacher ${this.teacherPath})`,
        );
    }
    this.fakeOn = cfg.lambdaDm > 0 || cfg.gan;
    if (cfg.gan) {
      const b = this.fake.bottleneckShape();
      this.head = new GanHead(b.channels, b.resolution, deriveSeed(cfg.seed, 7));
      if (d !== 'cpu') this.head.to({ device: d });
      this.head.train();
      // every rank reads the global batch in the same order and keeps its slice: the data are partitioned
      this.data = new ImageLoader(openDataset(cfg.data!), { batchSize: cfg.batchSize * this.dist.size, resolution: tc.img_resolution, channels: tc.img_channels, numClasses: tc.label_dim, device: d, seed: deriveSeed(cfg.seed, 3) });
    } else {
      this.head = null;
      this.data = null;
    }
    const adam = { betas: cfg.betas as [number, number], weightDecay: cfg.weightDecay };
    this.fakeParams = [...this.fake.parameters(), ...(this.head?.parameters() ?? [])];
    this.optG = new AdamW(this.G.parameters(), { lr: cfg.genLr, ...adam });
    this.optF = new AdamW(this.fakeParams, { lr: cfg.fakeLr, ...adam });
    this.schedule = warmup(cfg.warmupSteps);
    this.table = keep(karrasTable(cfg.numTrainTimesteps, { sigmaMin: cfg.sigmaMin, sigmaMax: cfg.sigmaMax, rho: cfg.rho, device: d }));
    this.gen = Generator.create(d, deriveSeed(this.rankSeed, 11));
    this.pairsGen = Generator.create('cpu', deriveSeed(this.rankSeed, 12));
    this.realFn = denoiser(this.real, { guidance: cfg.realGuidance, dtype: cfg.dtype });
    this.fakeFn = denoiser(this.fake, { dtype: cfg.dtype });
    this.fixed = gridInputs({ count: tc.label_dim ? tc.label_dim * 8 : 64, channels: tc.img_channels, resolution: tc.img_resolution, classes: tc.label_dim, seed: deriveSeed(cfg.seed, 13), device: d });
    this.state = new TrainState(d).module('G', this.G).module('fake', this.fake);
    if (this.head) this.state.module('head', this.head);
    if (this.ema) this.state.module('ema', this.ema);
    this.state
      .optimizer('optG', this.optG)
      .optimizer('optF', this.optF)
      .generator('gen', this.gen)
      .generator('pairs', this.pairsGen)
      .value('step', () => this.step, (v) => { this.step = v; })
      .value('data', () => this.data?.state() ?? null, (v) => { if (v && this.data) this.data.loadState(v); });
  }

  get labelDim(): number { return this.real.config.label_dim; }

  private labelsFor(n: number): Tensor | null {
    return this.labelDim ? oneHot(this.randint(0, this.labelDim, n), this.labelDim) : null;
  }

  /** Standard normal noise of this process's batch (its slice of the global batch's in the test mode). */
  private randn(shape: number[]): Tensor {
    if (!this.sameNoise) return randn(shape, { generator: this.gen, device: this.device });
    const [n, ...rest] = shape;
    return randn([n! * this.dist.size, ...rest], { generator: this.gen, device: this.device }).narrow(0, this.dist.rank * n!, n!);
  }

  private randint(low: number, high: number, n: number): Tensor {
    if (!this.sameNoise) return randint(low, high, [n], { generator: this.gen, device: this.device });
    return randint(low, high, [n * this.dist.size], { generator: this.gen, device: this.device }).narrow(0, this.dist.rank * n, n);
  }

  private slice<T extends Tensor | null>(t: T, n: number): T {
    return (t && this.dist.size > 1 ? t.narrow(0, this.dist.rank * n, n) : t) as T;
  }

  /** This process's real images for the GAN: its slice of the global batch. */
  private realBatch(): { images: Tensor; labels: Tensor | null } {
    const b = this.data!.next();
    return { images: this.slice(b.images, this.cfg.batchSize), labels: this.slice(b.labels, this.cfg.batchSize) };
  }

  /** A regression batch (in the test mode, this process's slice of the global one). */
  private pairsBatch(n: number): { z: Tensor; labels: Tensor | null; y: Tensor } {
    if (!this.sameNoise) return this.pairs!.batch(n, this.pairsGen, this.device, this.labelDim);
    const b = this.pairs!.batch(n * this.dist.size, this.pairsGen, this.device, this.labelDim);
    return { z: this.slice(b.z, n), labels: this.slice(b.labels, n), y: this.slice(b.y, n) };
  }

  /** GAN realism logits of images (noised first for the diffusion GAN), through the fake score's bottleneck. */
  private ganLogits(x: Tensor, labels: Tensor | null): Tensor {
    const n = x.shape[0]!;
    let img = x;
    let sigma: Tensor;
    if (this.cfg.diffusionGan) {
      sigma = this.table.indexSelect(0, this.randint(0, Math.min(this.cfg.diffusionGanMaxTimestep, this.cfg.numTrainTimesteps), n));
      img = x.add(this.randn(x.shape).mul(sigma.reshape([-1, 1, 1, 1])));
    } else {
      sigma = this.table.slice(0, 0, 1).expand([n]);
    }
    return this.head!.logits(this.fake.bottleneck(img, sigma, { labels, dtype: this.cfg.dtype }));
  }

  /** One iteration: a generator update every fakeUpdatesPerGen-th iteration, a fake-score update always (when used). */
  iteration(): StepMetrics {
    const cfg = this.cfg;
    const B = cfg.batchSize;
    const tc = this.real.config;
    const shape = [B, tc.img_channels, tc.img_resolution, tc.img_resolution];
    const genTurn = !this.fakeOn || this.step % cfg.fakeUpdatesPerGen === 0;
    const scale = this.schedule(this.step + 1);
    const T = cfg.numTrainTimesteps;
    const minStep = Math.floor(cfg.minStepPercent * T);
    const maxStep = Math.floor(cfg.maxStepPercent * T);
    const out = tidy(() => {
      const m: Record<string, Tensor> = {};
      const labels = this.labelsFor(B);
      const z = this.randn(shape);
      let x: Tensor | null = null;
      if (genTurn) {
        // ---- generator turn ----
        const terms: Tensor[] = [];
        if (this.fakeOn) x = generate(this.G, z, labels, cfg.sigmaC, cfg.dtype);
        if (cfg.lambdaDm > 0) {
          const dm = distributionMatchingLoss(x!, labels, this.realFn, this.fakeFn, this.table, {
            tIndex: this.randint(minStep, Math.min(maxStep + 1, T), B),
            noise: this.randn(shape),
          });
          m.loss_dm = dm.loss;
          m.dm_grad_norm = dm.grad.norm();
          terms.push(cfg.lambdaDm === 1 ? dm.loss : dm.loss.mul(cfg.lambdaDm));
        }
        if (this.pairs && cfg.lambdaReg > 0) {
          const pb = this.pairsBatch(B);
          const xr = generate(this.G, pb.z, pb.labels, cfg.sigmaC, cfg.dtype);
          const reg = regressionLoss(cfg.regression, xr, pb.y, this.lpips, { resize: cfg.lpipsResize, dtype: cfg.dtype });
          m.loss_reg = reg;
          terms.push(reg.mul(cfg.lambdaReg));
        }
        if (this.head && cfg.ganGenWeight > 0) {
          const g = ganGeneratorLoss(this.ganLogits(x!, labels));
          m.loss_gan_gen = g;
          terms.push(g.mul(cfg.ganGenWeight));
        }
        this.optG.zeroGrad();
        if (terms.length) terms.reduce((a, b) => a.add(b)).backward();
        this.dist.averageGradients(this.G.parameters());
        m.gnorm_gen = foreach.clipGradNorm_(this.G.parameters(), cfg.gradClip);
        this.optG.step(cfg.genLr * scale);
        this.optG.zeroGrad();
        this.emaUpdate?.update(this.G, cfg.emaDecay);
      } else {
        x = noGrad(() => generate(this.G, z, labels, cfg.sigmaC, cfg.dtype));
      }
      if (this.fakeOn) {
        // ---- guidance (fake score) turn ----
        const xd = x!.detach();
        const fl = fakeScoreLoss(xd, labels, this.fakeFn, this.table, {
          tIndex: this.randint(0, T, B),
          noise: this.randn(shape),
        }, tc.sigma_data);
        let totalF = fl.loss;
        m.loss_fake = fl.loss;
        if (this.head && this.data) {
          const real = this.realBatch();
          const lr = this.ganLogits(real.images, real.labels);
          const lf = this.ganLogits(xd, labels);
          const cls = ganHeadLoss(lr, lf);
          m.loss_gan_head = cls;
          m.d_real = lr.sigmoid().mean();
          m.d_fake = lf.sigmoid().mean();
          totalF = totalF.add(cls.mul(cfg.ganHeadWeight));
        }
        this.optF.zeroGrad();
        totalF.backward();
        this.dist.averageGradients(this.fakeParams);
        m.gnorm_fake = foreach.clipGradNorm_(this.fakeParams, cfg.gradClip);
        this.optF.step(cfg.fakeLr * scale);
        this.optF.zeroGrad();
      }
      return m;
    });
    this.step += 1;
    // one device-to-host read for all scalars (one sync on CUDA, not one per metric)
    const names = Object.keys(out);
    // averaged over the processes (each computed them on its slice of the global batch)
    const values = names.length
      ? tidy(() => {
        const v = stack(names.map((k) => out[k]!.to('float64')));
        if (!this.dist.enabled) return v.toFloat64Array();
        const all = v.to('cpu');
        this.dist.sum(all);
        return all.div(this.dist.size).toFloat64Array();
      })
      : new Float64Array(0);
    dispose(Object.values(out));
    const metrics: StepMetrics = { gen_update: genTurn ? 1 : 0, lr_scale: scale };
    names.forEach((k, i) => { metrics[k] = values[i]!; });
    return metrics;
  }

  /** The generator that is sampled and exported: the EMA one when enabled. */
  get sampler(): EDMNetwork { return this.ema ?? this.G; }

  /** One-step samples of the fixed noises (EMA generator when enabled), as a PNG grid. */
  sampleGrid(file: string): void {
    noGrad(() => tidy(() => saveGrid(generate(this.sampler, this.fixed.z, this.fixed.labels, this.cfg.sigmaC, this.cfg.dtype).clamp(-1, 1), file, this.labelDim || undefined)));
  }

  /** Writes the generator (EMA when enabled) as a standalone teacher-format file with role "generator". */
  exportGenerator(file: string, which: 'auto' | 'G' | 'ema' = 'auto'): void {
    const net = which === 'G' || !this.ema ? this.G : this.ema;
    saveGenerator(net, file, this.cfg.sigmaC, { distilled_from: path.basename(this.teacherPath), teacher_sha256: this.teacherSha256, dmd_steps: String(this.step) });
  }

  /** A one-line summary of the recipe (printed at start-up). */
  describe(): string {
    const cfg = this.cfg;
    const parts = [
      `teacher ${path.basename(this.teacherPath)} (${this.real.parameterCount()} params)`,
      `${cfg.steps} iterations, batch ${cfg.batchSize}`,
      cfg.lambdaDm > 0 ? `distribution matching x${cfg.lambdaDm}, fake:gen ${cfg.fakeUpdatesPerGen}:1` : 'no distribution matching',
      this.pairs ? `regression ${cfg.regression} x${cfg.lambdaReg} on ${this.pairs.size} pairs` : 'no regression loss (no --pairs)',
    ];
    if (this.head) parts.push(`GAN (${cfg.diffusionGan ? 'diffusion ' : ''}head on the ${this.fake.bottleneckShape().channels}-channel bottleneck, real images ${cfg.data})`);
    if (this.ema) parts.push(`EMA ${cfg.emaDecay}`);
    parts.push(`${this.device} ${cfg.dtype}${isCuda(this.device) ? `, TF32 ${cfg.tf32 ? 'on' : 'off'}` : ''}${cfg.deterministic ? ', deterministic kernels' : ''}`);
    if (this.dist.size > 1) parts.push(`${this.dist.size} processes (${this.dist.backend}), global batch ${cfg.batchSize * this.dist.size}`);
    return `DMD: ${parts.join(', ')}`;
  }

  /** The full run: resume, iterations with progress, metrics.jsonl, sample grids, checkpoints, SIGINT, export. */
  async train(log: (s: string) => void = console.log, o: { progress?: boolean } = {}): Promise<DMDRunResult> {
    const cfg = this.cfg;
    const main = this.dist.isMain;
    if (main) log(this.describe());
    const probe = cfg.evalEvery > 0 && main
      ? FDProbe.create({ classifier: cfg.classifier, ref: cfg.evalRef, refNum: cfg.evalRefNum, num: cfg.evalNum, seed: deriveSeed(cfg.seed, 14), device: this.device, config: this.real.config })
      : null;
    try {
      const r = await runTraining(cfg, {
        kind: 'dmd',
        label: 'dmd',
        total: cfg.steps,
        state: this.state,
        position: () => this.step,
        identity: { ...settingsIdentity(cfg, ['steps', 'teacher']), teacher_sha256: this.teacherSha256 },
        config: cfg,
        info: {
          device: this.device, dtype: cfg.dtype, tf32: isCuda(this.device) ? cfg.tf32 : 'n/a (CPU)', deterministic: cfg.deterministic, teacher: this.teacherPath, teacher_sha256: this.teacherSha256,
          parameters: this.real.parameterCount(), batch: cfg.batchSize, processes: this.dist.size, distributed_backend: this.dist.backend,
          global_batch: cfg.batchSize * this.dist.size, recipe: this.describe(),
        },
        dist: this.dist,
        // identical weights on every rank is an invariant: rank 0's are broadcast at the start and after a resume
        start: () => this.dist.broadcastModules([this.G, this.fake, this.head, this.ema]),
        finite: ['loss_dm', 'loss_reg', 'loss_fake', 'loss_gan_gen', 'loss_gan_head'],
        step: () => this.iteration(),
        shown: (m) => {
          const s: StepMetrics = {};
          if (m.loss_fake !== undefined) s.fake = m.loss_fake;
          if (m.loss_dm !== undefined) s.dm = m.loss_dm;
          if (m.loss_reg !== undefined) s.reg = m.loss_reg;
          return s;
        },
        sample: (file) => this.sampleGrid(file),
        evaluate: probe ? { every: cfg.evalEvery, run: () => probe.run((z, labels) => generate(this.sampler, z, labels, cfg.sigmaC, cfg.dtype)) } : undefined,
      }, log, o);
      let generator: string | null = null;
      if (r.status === 'done' && main) {
        generator = path.join(cfg.out, 'generator.safetensors');
        this.exportGenerator(generator);
        log(`wrote ${generator} (one-step generator, sigma_c ${cfg.sigmaC}); sample it with: npx dmd sample --generator ${generator} --out grid.png`);
        if (cfg.finalEval > 0 && (await this.finalEvaluation(generator, log))) writeReport(cfg.out);
      }
      return { ...r, generator };
    } finally {
      probe?.dispose();
    }
  }

  /**
   * Evaluates the exported generator (FD in the evaluation classifier's features, accuracy on intended
   * classes) and prints it beside the teacher's figures from `<teacher>.eval.json` (a `dmd eval`
   * output) when that file exists. Skipped, with a note, when no evaluation classifier fits.
   */
  private async finalEvaluation(generator: string, log: (s: string) => void): Promise<EvalResult | null> {
    const cfg = this.cfg;
    const tc = this.real.config;
    if (!cfg.classifier && !(tc.img_channels === 1 && tc.img_resolution === 32 && tc.label_dim === 10)) {
      log('final evaluation skipped: no evaluation classifier fits this teacher (pass --classifier, or --final-eval 0)');
      return null;
    }
    const out = path.join(cfg.out, 'final-eval.json');
    const r = await evaluate(EvalConfigSchema.parse({ generator, num: cfg.finalEval, ref: cfg.evalRef, refNum: cfg.evalRefNum, classifier: cfg.classifier, seed: cfg.seed, device: this.device, out }), () => {}, { single: true });
    const fdKey = Object.keys(r).find((k) => k.startsWith('FD-') && !k.endsWith('_noise_floor'))!;
    const known = path.join(path.dirname(this.teacherPath), `${path.basename(this.teacherPath).replace(/\.(safetensors|pt|pth)$/, '')}.eval.json`);
    let teacher: EvalResult | null = null;
    try {
      if (existsSync(known)) teacher = JSON.parse(readFileSync(known, 'utf8')) as EvalResult;
    } catch {
      log(`note: ${known} is not readable JSON; comparing without the teacher's figures`);
    }
    const fd = r[fdKey] as number;
    const acc = r.classifier_accuracy_on_samples as number | undefined;
    let line = `final evaluation (${cfg.finalEval} samples, ${out}): ${fdKey} ${fd.toFixed(3)}`;
    const tfd = teacher?.[fdKey];
    if (typeof tfd === 'number') line += ` (teacher ${teacher!.mode} with NFE ${teacher!.nfe}: ${tfd.toFixed(3)} at ${teacher!.num} samples; ratio ${(fd / tfd).toFixed(2)})`;
    if (acc !== undefined) line += `, accuracy on intended classes ${acc.toFixed(3)}`;
    if (acc !== undefined && typeof teacher?.classifier_accuracy_on_samples === 'number') line += ` (teacher ${teacher.classifier_accuracy_on_samples.toFixed(3)})`;
    log(line);
    return r;
  }

  dispose(): void {
    for (const m of [this.real, this.fake, this.G, this.ema, this.head, this.lpips]) m?.dispose();
    this.pairs?.dispose();
    this.optG.dispose();
    this.optF.dispose();
    dispose([this.table, this.fixed]);
    this.dist.destroy();
  }
}
