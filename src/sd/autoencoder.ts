// Training a small KL autoencoder of the SD family (ldm's AutoencoderKL: Encoder, quant_conv, a
// diagonal Gaussian posterior, post_quant_conv, Decoder) for latent text-to-image teachers made here:
// L1 reconstruction of a posterior sample plus a KL term with a small weight (ldm's kl_weight 1e-6 for
// SD), Adam, as a run of train/run.ts (checkpoints, exact resume, grids of originals over
// reconstructions, metrics). At the end the latent scale is measured as ldm's scale_by_std does (1 / std
// of the posterior means over a few batches) and the autoencoder is written under SD v1's first-stage
// key names with its config, so `dmd teacher --mode sd --vae` and StableDiffusion files take it.
import path from 'node:path';
import { z } from 'zod';
import { tidy, keep, dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { Generator, deriveSeed, randn } from '../tensor/random.js';
import { cat } from '../tensor/create.js';
import type { Tensor } from '../tensor/tensor.js';
import { AdamW } from '../nn/optim.js';
import { openDataset } from '../data/sources.js';
import { ImageLoader } from '../data/loader.js';
import { saveGrid } from '../data/grid.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { fields } from '../util/fields.js';
import { Distributed } from '../distributed/context.js';
import { resolveDevice, type Device } from '../tensor/device.js';
import { runTraining, type RunResult, type RunOptions } from '../train/run.js';
import { runSettingsShape, sampleEveryField, settingsIdentity } from '../train/settings.js';
import { TrainState } from '../train/state.js';
import { parseVAEConfig, vaeFactor, SDConfigError, type SDVAEConfig } from './config.js';
import { AutoencoderKL } from './vae.js';
import { VAE_PREFIX } from './checkpoint.js';

export const AutoencoderConfigSchema = z.object({
  ...runSettingsShape({ checkpointEvery: 500, metricsEvery: 50, out: 'runs/autoencoder' }),
  sampleEvery: sampleEveryField(1000),
  data: z.string().min(1).default('fashion-mnist').describe('images: fashion-mnist, a directory of IDX/CIFAR-10 files, an EDM .zip or a PNG folder'),
  resolution: z.number().int().positive().default(32).describe('image size (Fashion-MNIST 28 is padded to 32)'),
  ch: z.number().int().positive().default(32).describe('channels of the first level'),
  chMult: z.array(z.number().int().positive()).min(1).default([1, 2, 2]).describe('channel multipliers per level; the downsampling is 2^(levels - 1)'),
  numResBlocks: z.number().int().positive().default(1).describe('residual blocks per level'),
  embedDim: z.number().int().positive().default(4).describe('latent channels'),
  kimg: z.number().positive().default(60).describe('training length in thousands of images'),
  batchSize: fields.batchSize(64),
  lr: z.number().positive().default(1e-3).describe('Adam learning rate'),
  klWeight: z.number().min(0).default(1e-6).describe("weight of the posterior's KL divergence from N(0, I) (ldm: 1e-6)"),
  seed: fields.seed(),
  device: fields.device(),
});
export type AutoencoderConfig = z.infer<typeof AutoencoderConfigSchema>;

export interface AutoencoderRunResult extends RunResult {
  /** the written autoencoder (SD first-stage keys), with its scale factor */
  file: string;
  scaleFactor: number;
}

/** The architecture these settings describe, for images of `channels` channels. */
export function autoencoderConfig(cfg: Pick<AutoencoderConfig, 'resolution' | 'ch' | 'chMult' | 'numResBlocks' | 'embedDim'>, channels: number, scaleFactor = 1): SDVAEConfig {
  return parseVAEConfig({
    ddconfig: { resolution: cfg.resolution, in_channels: channels, out_ch: channels, ch: cfg.ch, ch_mult: cfg.chMult, num_res_blocks: cfg.numResBlocks, z_channels: cfg.embedDim, attn_resolutions: [] },
    embed_dim: cfg.embedDim,
    scale_factor: scaleFactor,
  });
}

/** L1 reconstruction of a posterior sample, and the mean KL divergence per image. */
function autoencoderLoss(vae: AutoencoderKL, x: Tensor, noise: Generator): { rec: Tensor; kl: Tensor } {
  return tidy(() => {
    const p = vae.encode(x);
    const z = AutoencoderKL.sample(p, randn(p.mean.shape, { generator: noise, device: x.device }));
    const rec = vae.decode(z).sub(x).abs().mean();
    const kl = p.mean.square().add(p.logvar.exp()).sub(1).sub(p.logvar).sum([1, 2, 3]).mul(0.5).mean();
    return { rec, kl };
  });
}

export async function trainAutoencoder(cfg: AutoencoderConfig, log: (s: string) => void = console.log, o: RunOptions = {}): Promise<AutoencoderRunResult> {
  const dist = Distributed.single();
  const device = resolveDevice(cfg.device);
  const source = openDataset(cfg.data, { resolution: cfg.resolution });
  const channels = source.channels === 1 ? 1 : 3;
  const config = autoencoderConfig(cfg, channels);
  if (cfg.resolution % vaeFactor(config)) throw new RangeError(`--resolution ${cfg.resolution} is not a multiple of the downsampling ${vaeFactor(config)} of --ch-mult [${cfg.chMult}]`);
  const loader = new ImageLoader(source, { batchSize: cfg.batchSize, resolution: cfg.resolution, channels, device, seed: cfg.seed, numClasses: 0 });
  const vae = AutoencoderKL.create(config, { seed: cfg.seed, device });
  vae.train();
  const opt = new AdamW(vae.parameters(), { lr: cfg.lr, betas: [0.5, 0.9], weightDecay: 0 });
  const noise = Generator.create(device, deriveSeed(cfg.seed, 1));
  let step = 0;
  const state = new TrainState(device)
    .module('vae', vae)
    .optimizer('opt', opt)
    .generator('noise', noise)
    .value('step', () => step, (v) => { step = v; })
    .value('loader', () => loader.state(), (v) => loader.loadState(v));
  const shown = keep(tidy(() => new ImageLoader(source, { batchSize: 8, resolution: cfg.resolution, channels, device, shuffle: false, numClasses: 0 }).batch([0, 1, 2, 3, 4, 5, 6, 7]).images));
  const file = path.join(cfg.out, 'autoencoder.safetensors');
  try {
    const r = await runTraining(cfg, {
      kind: 'autoencoder',
      label: 'autoencoder',
      total: Math.ceil((cfg.kimg * 1000) / cfg.batchSize),
      state,
      position: () => step,
      identity: settingsIdentity(cfg, ['kimg']),
      config: cfg,
      info: { device, data: source.name, images: source.size, parameters: vae.parameterCount(), downsampling: vaeFactor(config), latent: [cfg.embedDim, cfg.resolution / vaeFactor(config), cfg.resolution / vaeFactor(config)] },
      dist,
      step: () => {
        const m = tidy(() => {
          const { rec, kl } = autoencoderLoss(vae, loader.next().images, noise);
          opt.zeroGrad();
          rec.add(kl.mul(cfg.klWeight)).backward();
          opt.step(cfg.lr);
          return { loss_rec: rec.item(), kl: kl.item() };
        });
        step += 1;
        return m;
      },
      sample: (f) => noGrad(() => tidy(() => {
        vae.eval();
        const out = cat([shown, vae.decode(vae.encode(shown).mean).clamp(-1, 1)]);
        vae.train();
        saveGrid(out, f, 8);
      })),
    }, log, o);
    if (r.status !== 'done') return { ...r, file, scaleFactor: Number.NaN };
    vae.eval();
    const scaleFactor = latentScale(vae, loader);
    tidy(() => {
      const weights = new Map([...vae.stateDict()].map(([k, t]) => [VAE_PREFIX + k, t.to({ device: 'cpu' }).contiguous()] as const));
      writeSafetensors(file, weights, { format: 'dmd-torch/autoencoder', vae_config: JSON.stringify({ ...config, scale_factor: scaleFactor }), data: cfg.data });
    });
    log(`wrote ${file} (KL autoencoder f${vaeFactor(config)}, latents ${cfg.embedDim}x${cfg.resolution / vaeFactor(config)}x${cfg.resolution / vaeFactor(config)}, scale factor ${scaleFactor.toFixed(5)})`);
    return { ...r, file, scaleFactor };
  } finally {
    shown.dispose();
    opt.dispose();
    vae.dispose();
  }
}

/** ldm's scale_by_std: 1 / the standard deviation of posterior means over up to 8 batches. */
function latentScale(vae: AutoencoderKL, loader: ImageLoader): number {
  return noGrad(() => tidy(() => {
    const parts: Tensor[] = [];
    for (let b = 0; b < Math.min(8, loader.batchesPerEpoch); b++) parts.push(vae.encode(loader.batch(Array.from({ length: loader.batchSize }, (_, i) => b * loader.batchSize + i)).images).mean);
    return 1 / cat(parts).std().item();
  }));
}

/** Reads an autoencoder written by trainAutoencoder (its config, with the measured scale, from the metadata). */
export function loadAutoencoder(file: string, o: { device?: Device } = {}): AutoencoderKL {
  const { tensors, metadata } = readSafetensors(file);
  try {
    if (metadata.format !== 'dmd-torch/autoencoder' || !metadata.vae_config) throw new SDConfigError(`${file}: not an autoencoder from 'dmd autoencoder' (no dmd-torch/autoencoder metadata)`);
    const vae = AutoencoderKL.create(parseVAEConfig(JSON.parse(metadata.vae_config), `${file}: vae_config`), { init: false });
    vae.loadStateDict(new Map([...tensors].map(([k, t]) => [k.startsWith(VAE_PREFIX) ? k.slice(VAE_PREFIX.length) : k, t] as const)));
    if (o.device && o.device !== 'cpu') vae.to({ device: o.device });
    return vae.eval().requiresGrad_(false);
  } finally {
    dispose([...tensors.values()]);
  }
}
