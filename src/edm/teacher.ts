// EDM training of a teacher (Karras et al. 2022, training/loss.py + training_loop.py): ln sigma ~
// N(P_mean, P_std^2), loss weight (sigma^2 + sigma_data^2) / (sigma sigma_data)^2, Adam with a linear
// learning-rate ramp-up, EMA with a half-life in images, dropout and label dropout, optional gradient
// clipping; checkpoints resume exactly, and the EMA network is written as a teacher file.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { Tensor } from '../tensor/tensor.js';
import { tidy, dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { randn, Generator } from '../tensor/random.js';
import { foreach } from '../tensor/foreach.js';
import { cuda } from '../tensor/cuda.js';
import { resolveDevice, isCuda } from '../tensor/device.js';
import { AdamW } from '../nn/optim.js';
import { edmEmaBeta } from '../nn/ema.js';
import { openDataset } from '../data/sources.js';
import { ImageLoader, deriveSeed } from '../data/loader.js';
import { saveGrid, gridInputs } from '../data/grid.js';
import { EDMNetwork } from './network.js';
import { saveEDM } from './checkpoint.js';
import { preset, PRESET_NAMES } from './presets.js';
import { sampleEDM } from './sampler.js';
import { parseEDMConfig } from './config.js';
import { CheckpointStore, groupByPrefix, withPrefix, putOptimizer, restoreOptimizer, putGlobalRng, restoreGlobalRng, resumePoint } from '../train/checkpoints.js';
import { MetricsLog } from '../train/metrics.js';
import { Progress } from '../train/progress.js';
import { runLoop } from '../train/loop.js';

export const TeacherConfigSchema = z.object({
  out: z.string().describe('run directory (checkpoints, samples, metrics.jsonl, the teacher file)'),
  data: z.string().default('fashion-mnist').describe('dataset: fashion-mnist, a directory of IDX/CIFAR-10 files, an EDM .zip or a PNG folder'),
  preset: z.string().default('fmnist-small').describe(`network preset (${PRESET_NAMES.join(', ')})`),
  network: z.record(z.string(), z.unknown()).optional().describe('EDMPrecond arguments overriding the preset (config file only)'),
  kimg: z.number().positive().default(200).describe('training length in thousands of images'),
  batchSize: z.number().int().positive().default(128).describe('images per step'),
  lr: z.number().positive().default(1e-3).describe('Adam learning rate'),
  lrRampupKimg: z.number().min(0).default(50).describe('linear learning-rate ramp-up, in kimg'),
  betas: z.array(z.number()).length(2).default([0.9, 0.999]).describe('Adam betas'),
  emaHalflifeKimg: z.number().positive().default(500).describe('EMA half-life in kimg (EDM)'),
  emaRampupRatio: z.number().min(0).nullable().default(0.05).describe('EMA ramp-up ratio (EDM; null disables)'),
  gradClip: z.number().min(0).default(0).describe('clip the global gradient norm (0 = off, as EDM)'),
  pMean: z.number().default(-1.2).describe('mean of ln sigma during training'),
  pStd: z.number().positive().default(1.2).describe('std of ln sigma during training'),
  seed: z.number().int().min(0).default(0).describe('random seed'),
  device: z.string().default('auto').describe("'cpu', 'cuda', 'cuda:N' or 'auto'"),
  dtype: z.enum(['float32', 'bfloat16', 'float16']).default('float32').describe('execution dtype of the UNet (fp32 master weights)'),
  tf32: z.boolean().default(true).describe('TensorFloat-32 for float32 matmuls and convolutions on CUDA (--no-tf32: exact float32)'),
  checkpointEvery: z.number().int().positive().default(500).describe('steps between checkpoints'),
  keepCheckpoints: z.number().int().positive().default(3).describe('checkpoints kept'),
  sampleEvery: z.number().int().positive().default(1000).describe('steps between sample grids (Heun, 18 steps, EMA net)'),
  metricsEvery: z.number().int().positive().default(50).describe('steps between metrics.jsonl records'),
  format: z.enum(['pt', 'safetensors']).default('safetensors').describe('teacher file format'),
  resume: z.boolean().default(false).describe('continue from the last checkpoint in --out'),
});
export type TeacherConfig = z.infer<typeof TeacherConfigSchema>;

interface TeacherMeta {
  step: number;
  nimg: number;
  loader: { epoch: number; position: number };
  optStep: number;
  config: TeacherConfig;
}

export interface TeacherRunResult {
  teacherPath: string;
  steps: number;
  seconds: number;
  status: 'done' | 'interrupted';
}

export async function trainTeacher(cfg: TeacherConfig, log: (s: string) => void = console.log): Promise<TeacherRunResult> {
  const t0 = performance.now();
  const device = resolveDevice(cfg.device);
  if (isCuda(device)) cuda.setAllowTF32({ matmul: cfg.tf32, cudnn: cfg.tf32 });
  mkdirSync(cfg.out, { recursive: true });
  const netConfig = parseEDMConfig({ ...preset(cfg.preset), ...(cfg.network ?? {}) });
  const source = openDataset(cfg.data);
  const loader = new ImageLoader(source, { batchSize: cfg.batchSize, resolution: netConfig.img_resolution, channels: netConfig.img_channels, numClasses: netConfig.label_dim, device, seed: cfg.seed });
  if (netConfig.label_dim && !source.labels) throw new Error(`${source.name} has no labels but the network is class-conditional (label_dim ${netConfig.label_dim})`);
  const net = EDMNetwork.create(netConfig, { seed: cfg.seed, device });
  net.train();
  const ema = net.clone();
  ema.eval().requiresGrad_(false);
  const opt = new AdamW(net.parameters(), { lr: cfg.lr, betas: cfg.betas as [number, number], weightDecay: 0, eps: 1e-8 });
  const gen = Generator.create(device, deriveSeed(cfg.seed, 1));
  const store = new CheckpointStore(path.join(cfg.out, 'checkpoints'), cfg.keepCheckpoints);
  const metrics = new MetricsLog(path.join(cfg.out, 'metrics.jsonl'));
  let step = 0;
  let nimg = 0;

  const latest = resumePoint(store, cfg.resume, cfg.out);
  if (latest) {
    const ck = CheckpointStore.load<TeacherMeta>(latest);
    try {
      noGrad(() => {
        net.loadStateDict(groupByPrefix(ck.tensors, 'net'));
        ema.loadStateDict(groupByPrefix(ck.tensors, 'ema'));
      });
      restoreOptimizer(ck, 'opt', opt, ck.meta.optStep);
      gen.setState(ck.tensors.get('rng/gen')!);
      restoreGlobalRng(ck, device);
      loader.loadState(ck.meta.loader);
      step = ck.meta.step;
      nimg = ck.meta.nimg;
    } finally {
      dispose(ck.tensors);
    }
    log(`resumed from ${latest} at step ${step} (${(nimg / 1000).toFixed(1)} kimg)`);
  }

  const totalSteps = Math.ceil((cfg.kimg * 1000) / cfg.batchSize);
  const classes = netConfig.label_dim;
  const fixed = gridInputs({
    count: classes ? classes * Math.min(8, Math.max(1, Math.floor(64 / classes))) : 64,
    channels: netConfig.img_channels, resolution: netConfig.img_resolution, classes, seed: deriveSeed(cfg.seed, 2), device,
  });
  const sample = (file: string) => noGrad(() => tidy(() => saveGrid(sampleEDM(ema, fixed.z, fixed.labels, { numSteps: 18 }).x.to('float32').clamp(-1, 1), file, classes || undefined)));

  const checkpoint = () => {
    tidy(() => {
      const t = new Map<string, Tensor>();
      withPrefix(t, 'net', net.stateDict());
      withPrefix(t, 'ema', ema.stateDict());
      putOptimizer(t, 'opt', opt);
      t.set('rng/gen', gen.getState());
      putGlobalRng(t, device);
      store.save<TeacherMeta>(step, t, { step, nimg, loader: loader.state(), optStep: opt.stepCount, config: cfg });
    });
  };

  const progress = new Progress({ total: totalSteps, start: step, label: 'teacher' });
  /** EDM's learning rate after `images` training images: a linear ramp over lrRampupKimg. */
  const lrAt = (images: number) => cfg.lr * Math.min(images / Math.max(cfg.lrRampupKimg * 1000, 1e-8), 1);
  const sd = netConfig.sigma_data;
  const status = await runLoop({
    total: totalSteps,
    step: () => step,
    finite: ['loss'],
    runStep: () => {
      const loss = tidy(() => {
        const { images, labels } = loader.next();
        const n = images.shape[0]!;
        const sigma = randn([n, 1, 1, 1], { device, generator: gen }).mul(cfg.pStd).add(cfg.pMean).exp();
        const weight = sigma.square().add(sd * sd).div(sigma.mul(sd).square());
        const noise = randn(images.shape, { device, generator: gen }).mul(sigma);
        const D = net.forward(images.add(noise), sigma.flatten(), { labels, dtype: cfg.dtype });
        const perPixel = weight.mul(D.sub(images).square());
        const objective = perPixel.sum().div(n); // EDM: loss.sum() / batch
        opt.zeroGrad();
        objective.backward();
        const rate = lrAt(nimg + n);
        if (cfg.gradClip > 0) foreach.clipGradNorm_(net.parameters(), cfg.gradClip);
        opt.step(rate);
        nimg += n;
        foreach.lerp_(ema.parameters(), net.parameters(), 1 - edmEmaBeta(n, cfg.emaHalflifeKimg, nimg, cfg.emaRampupRatio));
        return perPixel.mean().item();
      });
      step += 1;
      return { loss };
    },
    afterStep: (s, m) => {
      progress.update(s, { ...m, kimg: nimg / 1000 });
      if (s % cfg.metricsEvery === 0 || s === totalSteps) metrics.write({ step: s, kimg: nimg / 1000, loss: m.loss!, lr: lrAt(nimg), seconds: (performance.now() - t0) / 1000 });
      if (s % cfg.checkpointEvery === 0) checkpoint();
      if (s % cfg.sampleEvery === 0) sample(path.join(cfg.out, `samples-${String(s).padStart(8, '0')}.png`));
    },
    checkpoint: (why) => {
      checkpoint();
      if (why === 'interrupt') {
        progress.break();
        log(`interrupted: checkpoint written at step ${step}; continue with --resume`);
      }
    },
  });

  const teacherPath = path.join(cfg.out, `teacher.${cfg.format}`);
  if (status === 'done') {
    sample(path.join(cfg.out, 'samples-final.png'));
    saveEDM(ema, teacherPath, { trained_kimg: String(nimg / 1000), data: cfg.data });
    writeFileSync(path.join(cfg.out, 'teacher-config.json'), JSON.stringify({ network: netConfig, training: cfg }, null, 2));
    log(`wrote ${teacherPath} (EMA network, ${(nimg / 1000).toFixed(1)} kimg, ${step} steps)`);
  }
  dispose([fixed]);
  opt.dispose();
  net.dispose();
  ema.dispose();
  return { teacherPath, steps: step, seconds: (performance.now() - t0) / 1000, status };
}
