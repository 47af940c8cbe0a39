// `dmd teacher --mode sd`: training a small latent text-to-image teacher of the Stable Diffusion family
// on class-labelled images with captions made from the class names. Each image is captioned by one of
// its class's phrasings (drawn per step; the caption is dropped for the empty prompt with probability
// --caption-dropout, for classifier-free guidance), encoded by a CLIP text encoder that is either frozen at
// its seeded initialisation (the default: embeddings computed once) or trained with the UNet
// (--train-text-encoder: same optimizer, EMA and clipping; the written file holds its EMA), and its latent (a trained autoencoder from `dmd autoencoder`, scaled) is noised
// with SD's DDPM schedule; the UNet learns eps by MSE (ldm's objective) with Adam and an EMA (EDM's
// half-life in images). A run of train/run.ts; grids show one phrasing per class with DDIM and guidance.
// The EMA UNet is written with the text encoder and the autoencoder as an SD v1 single file.
import path from 'node:path';
import { tidy, keep, dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { Generator, deriveSeed, randn, randint, rand } from '../tensor/random.js';
import { tensor } from '../tensor/create.js';
import type { Tensor } from '../tensor/tensor.js';
import { resolveDevice } from '../tensor/device.js';
import { AdamW } from '../nn/optim.js';
import { foreach } from '../tensor/foreach.js';
import { EMA, edmEmaBeta } from '../nn/ema.js';
import { openDataset, DatasetError, type ImageSource } from '../data/sources.js';
import { ImageLoader } from '../data/loader.js';
import { saveGrid } from '../data/grid.js';
import { Distributed } from '../distributed/context.js';
import { runTraining, type RunResult, type RunOptions } from '../train/run.js';
import type { RunSettings } from '../train/settings.js';
import { settingsIdentity } from '../train/settings.js';
import { TrainState } from '../train/state.js';
import { parseStableDiffusionConfig, type StableDiffusionConfig } from './config.js';
import { loadAutoencoder } from './autoencoder.js';
import { SDUNet } from './unet.js';
import { CLIPTextEncoder } from './clip.js';
import { CLIPTokenizer } from './tokenizer.js';
import { StableDiffusion } from './pipeline.js';
import { readPromptRecords } from './prompts.js';
import { alphasCumprod } from './schedule.js';

/** What the SD mode of `dmd teacher` reads from its settings (TeacherConfigSchema's sd fields). */
export interface SDTeacherSettings {
  out: string;
  data: string;
  vae?: string | undefined;
  captions?: string | undefined;
  captionDropout: number;
  trainTextEncoder: boolean;
  sdConfig?: Record<string, unknown> | undefined;
  kimg: number;
  batchSize: number;
  lr: number;
  emaHalflifeKimg: number;
  emaRampupRatio: number | null;
  gradClip: number;
  seed: number;
  device: string;
}

export class SDTeacherSetupError extends Error {
  readonly code = 'ERR_SD_TEACHER';
}

/** The default architecture for small images: a 2-level UNet with attention at both levels, a 2-layer text encoder. */
const SMALL: { unet: Record<string, unknown>; text: Record<string, unknown> } = {
  unet: { model_channels: 64, channel_mult: [1, 2], num_res_blocks: 1, attention_resolutions: [1, 2], num_heads: 4 },
  text: { width: 64, heads: 2, layers: 2 },
};

/** Phrasings per class from a JSON Lines file whose every line gives "text" and "class". */
function captionsByClass(file: string, classes: number): string[][] {
  const records = readPromptRecords(file);
  const by: string[][] = Array.from({ length: classes }, () => []);
  for (const r of records) {
    if (r.class === undefined) throw new SDTeacherSetupError(`--captions ${file}: every line needs a "class" (the class index the phrasing describes)`);
    if (r.class >= classes) throw new SDTeacherSetupError(`--captions ${file}: class ${r.class} is not a class of the data (0..${classes - 1})`);
    by[r.class]!.push(r.text);
  }
  const empty = by.findIndex((x) => !x.length);
  if (empty >= 0) throw new SDTeacherSetupError(`--captions ${file}: no phrasing for class ${empty}; give at least one per class`);
  return by;
}

export async function trainSDTeacher(cfg: SDTeacherSettings & RunSettings & Record<string, unknown>, log: (s: string) => void = console.log, o: RunOptions = {}): Promise<RunResult & { teacherPath: string }> {
  if (!cfg.vae) throw new SDTeacherSetupError('--mode sd needs the latent space: --vae runs/ae/autoencoder.safetensors (train one with dmd autoencoder)');
  if (!cfg.captions) throw new SDTeacherSetupError('--mode sd needs captions: --captions FILE, JSON Lines with "text" and "class" per phrasing');
  const device = resolveDevice(cfg.device);
  const dist = Distributed.single();
  const vae = loadAutoencoder(cfg.vae, { device });
  let source: ImageSource;
  let phrasings: string[][];
  try {
    source = openDataset(cfg.data, { resolution: vae.config.ddconfig.resolution });
    if (!source.labels) throw new DatasetError(`${source.name} has no class labels to caption its images with`);
    phrasings = captionsByClass(cfg.captions, source.numClasses);
  } catch (e) {
    vae.dispose();
    throw e;
  }
  const f = 2 ** (vae.config.ddconfig.ch_mult.length - 1);
  const res = vae.config.ddconfig.resolution;
  const config: StableDiffusionConfig = parseStableDiffusionConfig({
    unet: { ...SMALL.unet, ...((cfg.sdConfig?.unet as object) ?? {}), image_size: res / f, in_channels: vae.config.embed_dim, out_channels: vae.config.embed_dim, context_dim: ((cfg.sdConfig?.text as { width?: number })?.width ?? SMALL.text.width) as number },
    text: { ...SMALL.text, ...((cfg.sdConfig?.text as object) ?? {}) },
    vae: vae.config,
  }, '--sd-config');
  const trainText = cfg.trainTextEncoder;
  const text = CLIPTextEncoder.create(config.text, { seed: deriveSeed(cfg.seed, 7), device });
  const emaText = trainText ? CLIPTextEncoder.create(config.text, { device, init: false }).copyFrom(text).eval().requiresGrad_(false) : text;
  if (trainText) text.train(); else text.eval().requiresGrad_(false);
  const unet = SDUNet.create(config.unet, { seed: cfg.seed, device });
  const emaUnet = unet.clone().eval().requiresGrad_(false);
  const tokenizer = CLIPTokenizer.load();
  // every phrasing (and the empty prompt, last) as token rows; a frozen encoder's embeddings computed once
  const all = [...phrasings.flat(), ''];
  const tokens = keep(tidy(() => tokenizer.batch(all, { contextLength: config.text.context_length }).to(device)));
  const table = trainText ? null : keep(noGrad(() => tidy(() => text.forward(tokens))));
  const context = (rows: Tensor): Tensor => (table ? table.indexSelect(0, rows) : text.forward(tokens.indexSelect(0, rows)));
  const offsets = phrasings.map((_, c) => phrasings.slice(0, c).reduce((a, p) => a + p.length, 0));
  const loader = new ImageLoader(source, { batchSize: cfg.batchSize, resolution: res, channels: config.vae.ddconfig.in_channels, device, seed: cfg.seed, notice: log });
  const ac = keep(tidy(() => alphasCumprod(config.schedule).to({ device })));
  const ema = new EMA(emaUnet);
  const textEma = new EMA(emaText);
  const trained = trainText ? [...unet.parameters(), ...text.parameters()] : unet.parameters();
  const opt = new AdamW(trained, { lr: cfg.lr, weightDecay: 0 });
  const gen = Generator.create(device, deriveSeed(cfg.seed, 1));
  const cpuGen = Generator.create('cpu', deriveSeed(cfg.seed, 2));
  let step = 0;
  let nimg = 0;
  const state = new TrainState(device)
    .module('unet', unet)
    .module('ema', emaUnet)
    .optimizer('opt', opt)
    .generator('gen', gen)
    .generator('captions', cpuGen)
    .value('step', () => step, (v) => { step = v; })
    .value('nimg', () => nimg, (v) => { nimg = v; })
    .value('loader', () => loader.state(), (v) => loader.loadState(v));
  if (trainText) state.module('text', text).module('text_ema', emaText);
  // the caption of each image: a random phrasing of its class, or the empty prompt (caption dropout)
  const captionRows = (classes: number[]): Tensor => tidy(() => {
    const pick = rand([classes.length], { generator: cpuGen }).toFloat64Array();
    const drop = rand([classes.length], { generator: cpuGen }).toFloat64Array();
    return tensor(classes.map((c, i) => (drop[i]! < cfg.captionDropout ? all.length - 1 : offsets[c]! + Math.floor(pick[i]! * phrasings[c]!.length))), { dtype: 'int64' }).to(device);
  });
  const sampler = new StableDiffusion({ config, unet: emaUnet, text: emaText, vae, tokenizer });
  const gridPrompts = phrasings.map((p) => p[0]!);
  const teacherPath = path.join(cfg.out, 'teacher.safetensors');
  const scale = config.vae.scale_factor;
  try {
    const r = await runTraining(cfg, {
      kind: 'teacher',
      label: 'sd teacher',
      total: Math.ceil((cfg.kimg * 1000) / cfg.batchSize),
      state,
      position: () => step,
      identity: { ...settingsIdentity(cfg, ['kimg']), sd_config: config },
      config: cfg,
      info: { device, mode: 'sd', text_encoder: trainText ? 'trained' : 'frozen', data: source.name, images: source.size, phrasings: all.length - 1, unet_parameters: unet.parameterCount(), text_parameters: text.parameterCount(), latent: [config.vae.embed_dim, res / f, res / f] },
      dist,
      finite: ['loss'],
      step: () => {
        const loss = tidy(() => {
          const b = loader.next();
          const cls = Array.from(b.labels!.argmax(1).to('cpu').toFloat64Array());
          const x0 = noGrad(() => vae.encode(b.images).mean.mul(scale));
          const t = randint(0, ac.shape[0]!, [x0.shape[0]!], { generator: gen, device });
          const eps = randn(x0.shape, { generator: gen, device });
          const a = ac.indexSelect(0, t).reshape([-1, 1, 1, 1]);
          const xt = a.sqrt().mul(x0).add(a.rsub(1).sqrt().mul(eps));
          const l = unet.forward(xt, t, context(captionRows(cls))).sub(eps).square().mean();
          opt.zeroGrad();
          l.backward();
          if (cfg.gradClip > 0) foreach.clipGradNorm_(trained, cfg.gradClip);
          opt.step(cfg.lr);
          nimg += cfg.batchSize;
          const beta = edmEmaBeta(cfg.batchSize, cfg.emaHalflifeKimg, nimg, cfg.emaRampupRatio);
          ema.update(unet, beta);
          if (trainText) textEma.update(text, beta);
          return l.item();
        });
        step += 1;
        return { loss };
      },
      extra: () => ({ kimg: nimg / 1000 }),
      sample: (file) => noGrad(() => tidy(() => {
        const rows = gridPrompts.flatMap((p) => [p, p, p, p]);
        saveGrid(sampler.sample(rows, { steps: 25, guidance: 3, seed: deriveSeed(cfg.seed, 3), batchSize: 40 }), file, 4);
      })),
    }, log, o);
    if (r.status === 'done') {
      sampler.saveSingleFile(teacherPath, { metadata: { role: 'teacher', trained_kimg: String(nimg / 1000), data: cfg.data, captions: path.basename(cfg.captions), text_encoder: trainText ? 'trained' : 'frozen' } });
      log(`wrote ${teacherPath} (EMA UNet with the ${trainText ? 'EMA of the trained' : 'frozen'} text encoder and the autoencoder, ${(nimg / 1000).toFixed(1)} kimg, ${step} steps)`);
    }
    return { ...r, teacherPath };
  } finally {
    dispose([tokens, ac]);
    if (table) table.dispose();
    opt.dispose();
    unet.dispose();
    if (trainText) text.dispose();
    sampler.dispose(); // the EMA UNet, the (EMA) text encoder, the autoencoder and the sampler's schedule and empty-prompt cache
  }
}

