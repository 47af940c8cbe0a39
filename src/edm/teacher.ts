// EDM training of a teacher (Karras et al. 2022, training/training_loop.py): EDM's loss (loss.ts),
// Adam with a linear learning-rate ramp-up, EMA with a half-life in images, dropout and label dropout,
// optional gradient clipping. A run of train/run.ts (checkpoints, exact resume, grids, metrics); at the
// end the EMA network is written as a teacher file. `dmd teacher` reaches it through teacher/train.ts,
// which also holds the text-to-image family's flags.
import path from 'node:path';
import { z } from 'zod';
import { tidy, dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { Generator, deriveSeed } from '../tensor/random.js';
import { foreach } from '../tensor/foreach.js';
import { isCuda, configureKernels } from '../tensor/device.js';
import type { Tensor } from '../tensor/tensor.js';
import { AdamW } from '../nn/optim.js';
import { EMA, edmEmaBeta } from '../nn/ema.js';
import { edmRampup } from '../nn/schedule.js';
import { openDataset, DatasetError } from '../data/sources.js';
import { ImageLoader } from '../data/loader.js';
import { saveGrid, gridInputs } from '../data/grid.js';
import { atomicWrite } from '../util/fs.js';
import { fields, distributedShape } from '../util/fields.js';
import { Distributed } from '../distributed/context.js';
import { runTraining, type RunResult, type RunOptions } from '../train/run.js';
import { runSettingsShape, sampleEveryField, settingsIdentity } from '../train/settings.js';
import { TrainState } from '../train/state.js';
import { checkBatchMemory } from '../train/memory.js';
import { EDMNetwork, checkExecutionDType, trainingBytesPerImage } from './network.js';
import { saveEDM } from './checkpoint.js';
import { preset, PRESET_NAMES } from './presets.js';
import { sampleEDM } from './sampler.js';
import { parseEDMConfig } from './config.js';
import { edmLoss } from './loss.js';

/** The run settings of a teacher run of either family: checkpoints, metrics, output. */
export const teacherRunSettings = runSettingsShape({ checkpointEvery: 500, metricsEvery: 50 });

/** The settings of an EDM teacher run; `dmd teacher` adds the text-to-image family's (teacher/config.ts). */
export const EDMTeacherConfigSchema = z.object({
  ...teacherRunSettings,
  sampleEvery: sampleEveryField(1000),
  data: z.string().min(1).default('fashion-mnist').describe('dataset: fashion-mnist, a directory of IDX/CIFAR-10 files, an EDM .zip or a PNG folder'),
  preset: z.string().default('fmnist-small').describe(`network preset (${PRESET_NAMES.join(', ')})`),
  network: z.record(z.string(), z.unknown()).optional().describe('EDMPrecond arguments overriding the preset (config file only)'),
  kimg: z.number().positive().default(200).describe('training length in thousands of images'),
  batchSize: fields.batchSize(128),
  lr: z.number().positive().default(1e-3).describe('Adam learning rate'),
  lrRampupKimg: z.number().min(0).default(50).describe('linear learning-rate ramp-up, in kimg'),
  betas: z.array(z.number().min(0).lt(1)).length(2).default([0.9, 0.999]).describe('Adam betas'),
  emaHalflifeKimg: z.number().positive().default(500).describe('EMA half-life in kimg (EDM)'),
  emaRampupRatio: z.number().min(0).nullable().default(0.05).describe('EMA ramp-up ratio (EDM; null disables)'),
  gradClip: z.number().min(0).default(0).describe('clip the global gradient norm (0 = off, as EDM)'),
  pMean: z.number().default(-1.2).describe('mean of ln sigma during training'),
  pStd: z.number().positive().default(1.2).describe('std of ln sigma during training'),
  seed: fields.seed(),
  device: fields.device(),
  dtype: fields.dtype('execution dtype of the UNet (fp32 master weights)'),
  tf32: fields.tf32(),
  deterministic: fields.deterministic(),
  format: z.enum(['pt', 'safetensors']).default('safetensors').describe('teacher file format'),
  ...distributedShape(),
});
export type EDMTeacherConfig = z.infer<typeof EDMTeacherConfigSchema>;

export interface TeacherRunResult extends RunResult {
  teacherPath: string;
}

export async function trainEDMTeacher(cfg: EDMTeacherConfig, log: (s: string) => void = console.log, o: RunOptions = {}): Promise<TeacherRunResult> {
  // data-parallel over the processes of a torchrun/srun/--nproc-per-node job: each reads its slice of
  // the global batch (batch size x processes), gradients are averaged, rank 0 writes
  const { dist, device } = Distributed.forCommand(cfg);
  checkExecutionDType(device, cfg.dtype);
  configureKernels(device, cfg);
  const netConfig = parseEDMConfig({ ...preset(cfg.preset), ...(cfg.network ?? {}) }, '--preset/network');
  const warn = checkBatchMemory(cfg.batchSize, trainingBytesPerImage(netConfig, 8, cfg.dtype), device);
  if (warn) log(`warning: ${warn}`);
  const source = openDataset(cfg.data, { resolution: netConfig.img_resolution });
  if (netConfig.label_dim && !source.labels) throw new DatasetError(`${source.name} has no labels but the network is class-conditional (label_dim ${netConfig.label_dim})`);
  const loader = new ImageLoader(source, { batchSize: cfg.batchSize * dist.size, resolution: netConfig.img_resolution, channels: netConfig.img_channels, numClasses: netConfig.label_dim, device, seed: cfg.seed, notice: dist.isMain ? log : undefined });
  const net = EDMNetwork.create(netConfig, { seed: cfg.seed, device });
  dist.agree('dmd teacher settings', { ...settingsIdentity(cfg), kimg: cfg.kimg, network: netConfig, parameters: net.parameterCount(), images: source.size });
  net.train();
  const emaNet = net.clone();
  emaNet.eval().requiresGrad_(false);
  const ema = new EMA(emaNet);
  const opt = new AdamW(net.parameters(), { lr: cfg.lr, betas: cfg.betas as [number, number], weightDecay: 0, eps: 1e-8 });
  const gen = Generator.create(device, deriveSeed(dist.rank ? deriveSeed(cfg.seed, 1_000_000 + dist.rank) : cfg.seed, 1));
  let step = 0;
  let nimg = 0;
  const state = new TrainState(device)
    .module('net', net)
    .module('ema', emaNet)
    .optimizer('opt', opt)
    .generator('gen', gen)
    .value('step', () => step, (v) => { step = v; })
    .value('nimg', () => nimg, (v) => { nimg = v; })
    .value('loader', () => loader.state(), (v) => loader.loadState(v));

  const classes = netConfig.label_dim;
  const fixed = gridInputs({
    count: classes ? classes * Math.min(8, Math.max(1, Math.floor(64 / classes))) : 64,
    channels: netConfig.img_channels, resolution: netConfig.img_resolution, classes, seed: deriveSeed(cfg.seed, 2), device,
  });
  const rampup = edmRampup(cfg.lrRampupKimg);
  const teacherPath = path.join(cfg.out, `teacher.${cfg.format}`);
  try {
    const r = await runTraining(cfg, {
      kind: 'teacher',
      label: 'teacher',
      total: Math.ceil((cfg.kimg * 1000) / (cfg.batchSize * dist.size)),
      state,
      position: () => step,
      identity: settingsIdentity(cfg, ['kimg']),
      config: cfg,
      info: {
        device, dtype: cfg.dtype, tf32: isCuda(device) ? cfg.tf32 : 'n/a (CPU)', deterministic: cfg.deterministic, network: netConfig, parameters: net.parameterCount(), data: source.name, images: source.size,
        batch: cfg.batchSize, processes: dist.size, global_batch: cfg.batchSize * dist.size,
      },
      dist,
      start: () => dist.broadcastModules([net, emaNet]),
      finite: ['loss'],
      step: () => {
        const loss = tidy(() => {
          const batch = loader.next();
          const slice = (t: Tensor) => (dist.size > 1 ? t.narrow(0, dist.rank * cfg.batchSize, cfg.batchSize) : t);
          const images = slice(batch.images);
          const labels = batch.labels ? slice(batch.labels) : null;
          const n = cfg.batchSize * dist.size;
          const { objective, perPixel } = edmLoss(net, images, labels, { pMean: cfg.pMean, pStd: cfg.pStd, dtype: cfg.dtype, generator: gen });
          opt.zeroGrad();
          objective.backward();
          dist.averageGradients(net.parameters());
          if (cfg.gradClip > 0) foreach.clipGradNorm_(net.parameters(), cfg.gradClip);
          opt.step(cfg.lr * rampup(nimg + n));
          nimg += n;
          ema.update(net, edmEmaBeta(n, cfg.emaHalflifeKimg, nimg, cfg.emaRampupRatio));
          return perPixel.item();
        });
        step += 1;
        return { loss };
      },
      shown: (m) => ({ ...m, kimg: nimg / 1000 }),
      extra: () => ({ kimg: nimg / 1000, lr: cfg.lr * rampup(nimg) }),
      sample: (file) => noGrad(() => tidy(() => saveGrid(sampleEDM(emaNet, fixed.z, fixed.labels, { numSteps: 18 }).x.to('float32').clamp(-1, 1), file, classes || undefined))),
    }, log, o);
    if (r.status === 'done' && dist.isMain) {
      saveEDM(emaNet, teacherPath, { trained_kimg: String(nimg / 1000), data: cfg.data });
      atomicWrite(path.join(cfg.out, 'teacher-config.json'), JSON.stringify({ network: netConfig, training: cfg }, null, 2), 'teacher config');
      log(`wrote ${teacherPath} (EMA network, ${(nimg / 1000).toFixed(1)} kimg, ${step} steps)`);
    }
    return { ...r, teacherPath };
  } finally {
    dispose([fixed]);
    opt.dispose();
    net.dispose();
    emaNet.dispose();
    dist.destroy();
  }
}
