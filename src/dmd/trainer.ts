// The DMD trainer (DMD, Yin et al. 2024; DMD2's two time-scale update rule and GAN option): the
// frozen real score (the teacher), a fake score trained online on generator samples, and a one-step
// generator G(z) = D_G(sigma_c z; sigma_c) trained with the distribution-matching gradient, an
// optional regression loss on teacher ODE pairs, and an optional GAN loss through a classifier head
// on the fake score's bottleneck. All three networks start as copies of the teacher.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Tensor } from '../tensor/tensor.js';
import { tidy, keep, dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { randn, randint, Generator } from '../tensor/random.js';
import { stack } from '../tensor/create.js';
import { foreach } from '../tensor/foreach.js';
import { type Device, isCuda, resolveDevice } from '../tensor/device.js';
import { cuda } from '../tensor/cuda.js';
import { AdamW } from '../nn/optim.js';
import { warmup } from '../nn/schedule.js';
import { oneHot } from '../nn/functional.js';
import { EDMNetwork } from '../edm/network.js';
import { loadEDM, saveEDM } from '../edm/checkpoint.js';
import { karrasTable } from '../edm/sigmas.js';
import { defaultTeacherPath } from '../edm/default-teacher.js';
import { PairsDataset } from '../edm/pairs.js';
import { deriveSeed, ImageLoader } from '../data/loader.js';
import { openDataset } from '../data/sources.js';
import { saveGrid, gridInputs } from '../data/grid.js';
import { LPIPS } from '../metrics/lpips.js';
import { regressionLoss } from '../metrics/regression.js';
import { CheckpointStore, groupByPrefix, withPrefix, putOptimizer, restoreOptimizer, putGlobalRng, restoreGlobalRng, resumePoint } from '../train/checkpoints.js';
import { MetricsLog } from '../train/metrics.js';
import { Progress } from '../train/progress.js';
import { runLoop, NonFiniteLossError } from '../train/loop.js';
import { DMDConfigSchema, type DMDConfig } from './config.js';
import { distributionMatchingLoss, fakeScoreLoss, scoreFn, type ScoreFn } from './losses.js';
import { generate } from './generator.js';
import { GanHead } from './head.js';

export class DMDSetupError extends Error {
  readonly code = 'ERR_DMD_SETUP';
}

interface CheckpointMeta {
  step: number;
  optG: number;
  optF: number;
  data: { epoch: number; position: number } | null;
  config: DMDConfig;
  teacher: string;
}

export type StepMetrics = Record<string, number>;

export class DMDTrainer {
  readonly cfg: DMDConfig;
  readonly device: Device;
  readonly teacherPath: string;
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
  step = 0;
  private readonly realFn: ScoreFn;
  private readonly fakeFn: ScoreFn;
  private readonly fakeParams: Tensor[];
  private readonly schedule: (s: number) => number;
  private readonly fixed: { z: Tensor; labels: Tensor | null };

  /** Loads and checks everything a run needs before the first step (clear errors at start-up). */
  constructor(config: Partial<DMDConfig> & Record<string, unknown>, log: (s: string) => void = console.log, o: { teacherNet?: EDMNetwork } = {}) {
    const parsed = DMDConfigSchema.strict().safeParse(config);
    if (!parsed.success) throw new DMDSetupError(`invalid DMD settings: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const cfg = parsed.data;
    this.cfg = cfg;
    this.device = resolveDevice(cfg.device);
    if (isCuda(this.device)) cuda.setAllowTF32({ matmul: cfg.tf32, cudnn: cfg.tf32 });
    if (cfg.minStepPercent > cfg.maxStepPercent) throw new DMDSetupError('--min-step-percent must not exceed --max-step-percent');
    if (cfg.regression === 'lpips' && cfg.pairs && !cfg.lpips)
      throw new DMDSetupError('--regression lpips needs LPIPS weights: pass --lpips <file from scripts/convert-lpips.py>, or choose --regression l2|l1|pseudo-huber');
    if (cfg.gan && !cfg.data) throw new DMDSetupError('--gan needs real images: pass --data (e.g. fashion-mnist)');
    this.teacherPath = o.teacherNet ? '<in-memory teacher>' : path.resolve(cfg.teacher ?? defaultTeacherPath());
    const d = this.device;
    this.real = o.teacherNet ? o.teacherNet.clone() : loadEDM(this.teacherPath, { device: d });
    const tc = this.real.config;
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
    this.lpips = cfg.pairs && cfg.regression === 'lpips' ? LPIPS.load(cfg.lpips!, { device: d }) : null;
    this.pairs = cfg.pairs ? new PairsDataset(cfg.pairs) : null;
    if (this.pairs) {
      const m = this.pairs.manifest;
      const want = [tc.img_channels, tc.img_resolution, tc.img_resolution];
      if (m.imageShape.join() !== want.join() || m.labelDim !== tc.label_dim)
        throw new DMDSetupError(`${cfg.pairs}: pairs of [${m.imageShape}] with ${m.labelDim} classes do not fit the teacher ([${want}], ${tc.label_dim} classes)`);
    }
    if (cfg.gan) {
      const b = this.fake.bottleneckShape();
      this.head = new GanHead(b.channels, b.resolution, deriveSeed(cfg.seed, 7));
      if (d !== 'cpu') this.head.to({ device: d });
      this.head.train();
      this.data = new ImageLoader(openDataset(cfg.data!), { batchSize: cfg.batchSize, resolution: tc.img_resolution, channels: tc.img_channels, numClasses: tc.label_dim, device: d, seed: deriveSeed(cfg.seed, 3) });
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
    this.gen = Generator.create(d, deriveSeed(cfg.seed, 11));
    this.pairsGen = Generator.create('cpu', deriveSeed(cfg.seed, 12));
    this.realFn = scoreFn(this.real, { guidance: cfg.realGuidance, dtype: cfg.dtype });
    this.fakeFn = scoreFn(this.fake, { dtype: cfg.dtype });
    this.fixed = gridInputs({ count: tc.label_dim ? tc.label_dim * 8 : 64, channels: tc.img_channels, resolution: tc.img_resolution, classes: tc.label_dim, seed: deriveSeed(cfg.seed, 13), device: d });
  }

  get labelDim(): number { return this.real.config.label_dim; }

  private labelsFor(n: number): Tensor | null {
    return this.labelDim ? oneHot(randint(0, this.labelDim, [n], { generator: this.gen, device: this.device }), this.labelDim) : null;
  }

  /** GAN realism logits of images (noised first for the diffusion GAN), through the fake score's bottleneck. */
  private ganLogits(x: Tensor, labels: Tensor | null): Tensor {
    const n = x.shape[0]!;
    let img = x;
    let sigma: Tensor;
    if (this.cfg.diffusionGan) {
      sigma = this.table.indexSelect(0, randint(0, Math.min(this.cfg.diffusionGanMaxTimestep, this.cfg.numTrainTimesteps), [n], { generator: this.gen, device: this.device }));
      img = x.add(randn(x.shape, { generator: this.gen, device: this.device }).mul(sigma.reshape([-1, 1, 1, 1])));
    } else {
      sigma = this.table.slice(0, 0, 1).expand([n]);
    }
    return this.head!.logits(this.fake.bottleneck(img, sigma, { labels, dtype: this.cfg.dtype }));
  }

  /** One iteration: a generator update every fakeUpdatesPerGen-th iteration, a fake-score update always. */
  iteration(): StepMetrics {
    const cfg = this.cfg;
    const B = cfg.batchSize;
    const tc = this.real.config;
    const shape = [B, tc.img_channels, tc.img_resolution, tc.img_resolution];
    const genTurn = this.step % cfg.fakeUpdatesPerGen === 0;
    const scale = this.schedule(this.step + 1);
    const T = cfg.numTrainTimesteps;
    const minStep = Math.floor(cfg.minStepPercent * T);
    const maxStep = Math.floor(cfg.maxStepPercent * T);
    const out = tidy(() => {
      const m: Record<string, Tensor> = {};
      const labels = this.labelsFor(B);
      const z = randn(shape, { generator: this.gen, device: this.device });
      let x: Tensor;
      if (genTurn) {
        // ---- generator turn ----
        x = generate(this.G, z, labels, cfg.sigmaC, cfg.dtype);
        const dm = distributionMatchingLoss(x, labels, this.realFn, this.fakeFn, this.table, {
          tIndex: randint(minStep, Math.min(maxStep + 1, T), [B], { generator: this.gen, device: this.device }),
          noise: randn(shape, { generator: this.gen, device: this.device }),
        });
        let total = dm.loss;
        m.loss_dm = dm.loss;
        m.dm_grad_norm = dm.grad.norm();
        if (this.pairs && cfg.lambdaReg > 0) {
          const pb = this.pairs.batch(B, this.pairsGen, this.device, this.labelDim);
          const xr = generate(this.G, pb.z, pb.labels, cfg.sigmaC, cfg.dtype);
          const reg = regressionLoss(cfg.regression, xr, pb.y, this.lpips, { resize: cfg.lpipsResize, dtype: cfg.dtype });
          m.loss_reg = reg;
          total = total.add(reg.mul(cfg.lambdaReg));
        }
        if (this.head && cfg.ganGenWeight > 0) {
          const g = this.ganLogits(x, labels).neg().softplus().mean();
          m.loss_gan_gen = g;
          total = total.add(g.mul(cfg.ganGenWeight));
        }
        this.optG.zeroGrad();
        total.backward();
        m.gnorm_gen = foreach.clipGradNorm_(this.G.parameters(), cfg.gradClip);
        this.optG.step(cfg.genLr * scale);
        this.optG.zeroGrad();
        if (this.ema) foreach.lerp_(this.ema.parameters(), this.G.parameters(), 1 - cfg.emaDecay);
      } else {
        x = noGrad(() => generate(this.G, z, labels, cfg.sigmaC, cfg.dtype));
      }
      // ---- guidance (fake score) turn ----
      const xd = x.detach();
      const fl = fakeScoreLoss(xd, labels, this.fakeFn, this.table, {
        tIndex: randint(0, T, [B], { generator: this.gen, device: this.device }),
        noise: randn(shape, { generator: this.gen, device: this.device }),
      }, tc.sigma_data);
      let totalF = fl.loss;
      m.loss_fake = fl.loss;
      if (this.head && this.data) {
        const real = this.data.next();
        const lr = this.ganLogits(real.images, real.labels);
        const lf = this.ganLogits(xd, labels);
        const cls = lf.softplus().add(lr.neg().softplus()).mean();
        m.loss_gan_head = cls;
        m.d_real = lr.sigmoid().mean();
        m.d_fake = lf.sigmoid().mean();
        totalF = totalF.add(cls.mul(cfg.ganHeadWeight));
      }
      this.optF.zeroGrad();
      totalF.backward();
      m.gnorm_fake = foreach.clipGradNorm_(this.fakeParams, cfg.gradClip);
      this.optF.step(cfg.fakeLr * scale);
      this.optF.zeroGrad();
      return m;
    });
    this.step += 1;
    // one device-to-host read for all scalars (one sync on CUDA, not one per metric)
    const names = Object.keys(out);
    const values = tidy(() => stack(names.map((k) => out[k]!.to('float64'))).toFloat64Array());
    dispose(Object.values(out));
    const metrics: StepMetrics = { gen_update: genTurn ? 1 : 0, lr_scale: scale };
    names.forEach((k, i) => { metrics[k] = values[i]!; });
    return metrics;
  }

  /** One-step samples of the fixed noises (EMA generator when enabled), as a PNG grid. */
  sampleGrid(file: string): void {
    const net = this.ema ?? this.G;
    noGrad(() => tidy(() => saveGrid(generate(net, this.fixed.z, this.fixed.labels, this.cfg.sigmaC, this.cfg.dtype).clamp(-1, 1), file, this.labelDim || undefined)));
  }

  /** Everything needed to continue bit-exactly: networks, optimizers, EMA, step, every RNG state. */
  saveCheckpoint(store: CheckpointStore): string {
    return tidy(() => {
      const t = new Map<string, Tensor>();
      withPrefix(t, 'G', this.G.stateDict());
      withPrefix(t, 'fake', this.fake.stateDict());
      if (this.head) withPrefix(t, 'head', this.head.stateDict());
      if (this.ema) withPrefix(t, 'ema', this.ema.stateDict());
      putOptimizer(t, 'optG', this.optG);
      putOptimizer(t, 'optF', this.optF);
      t.set('rng/gen', this.gen.getState());
      t.set('rng/pairs', this.pairsGen.getState());
      putGlobalRng(t, this.device);
      const meta: CheckpointMeta = { step: this.step, optG: this.optG.stepCount, optF: this.optF.stepCount, data: this.data?.state() ?? null, config: this.cfg, teacher: this.teacherPath };
      return store.save(this.step, t, meta);
    });
  }

  loadCheckpoint(file: string): void {
    const ck = CheckpointStore.load<CheckpointMeta>(file);
    try {
      noGrad(() => {
        this.G.loadStateDict(groupByPrefix(ck.tensors, 'G'));
        this.fake.loadStateDict(groupByPrefix(ck.tensors, 'fake'));
        if (this.head) this.head.loadStateDict(groupByPrefix(ck.tensors, 'head'));
        if (this.ema) this.ema.loadStateDict(groupByPrefix(ck.tensors, 'ema'));
      });
      restoreOptimizer(ck, 'optG', this.optG, ck.meta.optG);
      restoreOptimizer(ck, 'optF', this.optF, ck.meta.optF);
      this.gen.setState(ck.tensors.get('rng/gen')!);
      this.pairsGen.setState(ck.tensors.get('rng/pairs')!);
      restoreGlobalRng(ck, this.device);
      if (this.data && ck.meta.data) this.data.loadState(ck.meta.data);
      this.step = ck.meta.step;
    } finally {
      dispose(ck.tensors);
    }
  }

  /** Writes the generator (EMA when enabled) as a standalone teacher-format file. */
  exportGenerator(file: string, which: 'auto' | 'G' | 'ema' = 'auto'): void {
    const net = which === 'G' || !this.ema ? this.G : this.ema;
    const wasTraining = net.training;
    net.eval();
    saveEDM(net, file, { generator_sigma: String(this.cfg.sigmaC), distilled_from: path.basename(this.teacherPath), dmd_steps: String(this.step) });
    net.train(wasTraining);
  }

  /** The full run: resume, iterations with progress, metrics.jsonl, sample grids, checkpoints, SIGINT, export. */
  async train(log: (s: string) => void = console.log, o: { progress?: boolean } = {}): Promise<{ status: 'done' | 'interrupted'; generator: string | null }> {
    const cfg = this.cfg;
    mkdirSync(cfg.out, { recursive: true });
    const store = new CheckpointStore(path.join(cfg.out, 'checkpoints'), cfg.keepCheckpoints);
    const latest = resumePoint(store, cfg.resume, cfg.out);
    if (latest) {
      this.loadCheckpoint(latest);
      log(`resumed from ${latest} at iteration ${this.step}`);
    } else if (cfg.resume) {
      log(`--resume: no checkpoint in ${cfg.out} yet; starting from the teacher`);
    }
    log(
      `DMD: teacher ${path.basename(this.teacherPath)} (${this.real.parameterCount()} params), ${cfg.steps} iterations, batch ${cfg.batchSize}, ` +
        `fake:gen ${cfg.fakeUpdatesPerGen}:1, ${this.pairs ? `regression ${cfg.regression} x${cfg.lambdaReg} on ${this.pairs.size} pairs` : 'no regression loss (no --pairs: DMD2 style)'}` +
        `${this.head ? `, GAN (${cfg.diffusionGan ? 'diffusion ' : ''}head on the ${this.fake.bottleneckShape().channels}-channel bottleneck)` : ''}, ${this.device} ${cfg.dtype}${isCuda(this.device) ? `, TF32 ${cfg.tf32 ? 'on' : 'off'}` : ''}`,
    );
    const metrics = new MetricsLog(path.join(cfg.out, 'metrics.jsonl'));
    const progress = new Progress({ total: cfg.steps, start: this.step, label: 'dmd' });
    const t0 = performance.now();
    const start = this.step;
    let lastGood: string | null = latest;
    const checkFinite = () => {
      if (!noGrad(() => foreach.allFinite([...this.G.parameters(), ...this.fakeParams])))
        throw new NonFiniteLossError(`the networks hold NaN/Inf weights at iteration ${this.step}; not saving (last good checkpoint: ${lastGood ?? 'none'})`);
    };
    const status = await runLoop({
      total: cfg.steps,
      step: () => this.step,
      finite: ['loss_dm', 'loss_reg', 'loss_fake', 'loss_gan_gen', 'loss_gan_head'],
      runStep: () => this.iteration(),
      afterStep: (s, m) => {
        const shown: Record<string, number> = { fake: m.loss_fake! };
        if (m.loss_dm !== undefined) shown.dm = m.loss_dm;
        if (m.loss_reg !== undefined) shown.reg = m.loss_reg;
        if (o.progress !== false) progress.update(s, shown);
        if (s % cfg.metricsEvery === 0 || s === cfg.steps) {
          const secs = (performance.now() - t0) / 1000;
          metrics.write({ step: s, ...m, seconds: secs, iterations_per_second: (s - start) / secs });
        }
        if (s % cfg.sampleEvery === 0) this.sampleGrid(path.join(cfg.out, `samples-${String(s).padStart(8, '0')}.png`));
        if (s % cfg.checkpointEvery === 0) {
          checkFinite();
          lastGood = this.saveCheckpoint(store);
        }
      },
      checkpoint: (why) => {
        checkFinite();
        lastGood = this.saveCheckpoint(store);
        if (why === 'interrupt') {
          progress.break();
          log(`interrupted: checkpoint written at iteration ${this.step} (${lastGood}); continue with --resume`);
        }
      },
    });
    let generator: string | null = null;
    if (status === 'done') {
      this.sampleGrid(path.join(cfg.out, 'samples-final.png'));
      generator = path.join(cfg.out, 'generator.safetensors');
      this.exportGenerator(generator);
      log(`wrote ${generator} (one-step generator, sigma_c ${cfg.sigmaC}); sample it with: npx dmd sample --generator ${generator} --out grid.png`);
    }
    return { status, generator };
  }

  dispose(): void {
    for (const m of [this.real, this.fake, this.G, this.ema, this.head, this.lpips]) m?.dispose();
    this.pairs?.dispose();
    this.optG.dispose();
    this.optF.dispose();
    dispose([this.table, this.fixed]);
  }
}
