// Everything a DMD run checks and loads before its first step, as functions that can be called and
// tested alone: the settings (recipe applied, combinations that cannot work refused before any network
// is loaded), this process's place in a data-parallel job, and the teacher (its file, hash, memory fit).
import path from 'node:path';
import { deriveSeed } from '../tensor/random.js';
import { type Device, checkExecutionDType, configureKernels } from '../tensor/device.js';
import { defaultTeacherPath } from '../edm/default-teacher.js';
import { pathSha256 } from '../util/fs.js';
import { isStableDiffusion } from '../sd/checkpoint.js';
import { readPrompts } from '../sd/prompts.js';
import { openDataset } from '../data/sources.js';
import { isLatentsDir } from '../sd/latents.js';
import { formatZodError } from '../util/zod.js';
import { checkMemory, type MemoryEstimate } from '../train/memory.js';
import { dmdMemoryEstimate } from './memory.js';
import { settingsIdentity } from '../train/settings.js';
import { Distributed } from '../distributed/context.js';
import { DMDConfigSchema, type DMDConfig } from './config.js';
import { applyRecipe } from './recipes.js';
import { isBundledDefault } from './budget.js';
import { loadEDMTeacher } from './models/edm.js';
import { loadSDTeacher } from './models/sd.js';
import type { ScoreModel } from './score-model.js';

export class DMDSetupError extends Error {
  readonly code = 'ERR_DMD_SETUP';
}

/** dmd-train's settings with the recipe applied, validated, and their combinations checked. */
export function parseDMDSettings(config: Partial<DMDConfig> & Record<string, unknown>, o: { teacherInMemory?: boolean } = {}): DMDConfig {
  const parsed = DMDConfigSchema.strict().safeParse(applyRecipe(config, o));
  if (!parsed.success) throw new DMDSetupError(`invalid DMD settings: ${formatZodError(parsed.error)}`);
  const cfg = parsed.data;
  if (cfg.budget !== undefined && !isBundledDefault(cfg.recipe, config.teacher, o.teacherInMemory))
    throw new DMDSetupError(`--budget plans the default recipe of the bundled teacher from its measured costs; with ${cfg.recipe !== 'default' ? `--recipe ${cfg.recipe}` : 'your own teacher'} give --steps instead`);
  // before any network is loaded: the trainer's constructor cannot make the pairs (DMDTrainer.create does)
  if (cfg.pairs === 'auto') throw new DMDSetupError("--pairs auto must be resolved before the trainer is built: use await DMDTrainer.create(settings) (dmd-train does), or give a pairs directory");
  if (cfg.minStepPercent > cfg.maxStepPercent) throw new DMDSetupError('--min-step-percent must not exceed --max-step-percent');
  if (cfg.sigmaMin >= cfg.sigmaMax) throw new DMDSetupError(`--sigma-min (${cfg.sigmaMin}) must be below --sigma-max (${cfg.sigmaMax})`);
  if (cfg.regression === 'lpips' && cfg.pairs && !cfg.lpips)
    throw new DMDSetupError("--regression lpips needs LPIPS weights: pass --lpips <dir with torchvision's vgg16-397923af.pth and LPIPS's vgg.pth>, or choose --regression l2|l1|pseudo-huber");
  if (cfg.lrDecay > cfg.steps) throw new DMDSetupError(`--lr-decay ${cfg.lrDecay} is longer than the run (--steps ${cfg.steps}): give at most --steps iterations`);
  if (cfg.gan && !cfg.data) throw new DMDSetupError('--gan needs real images: pass --data (e.g. fashion-mnist)');
  if (cfg.ganFeatures !== 'fake' && !cfg.gan) throw new DMDSetupError(`--gan-features ${cfg.ganFeatures} places the GAN head, which only --gan adds: add --gan or drop --gan-features`);
  if (cfg.ganSamples === 'pairs' && !(cfg.gan && cfg.lambdaDm === 0 && cfg.pairs && cfg.lambdaReg > 0))
    throw new DMDSetupError('--gan-samples pairs lets the GAN judge the regression batch instead of fresh samples, which needs --gan, --pairs (with --lambda-reg > 0) and --lambda-dm 0 (distribution matching needs fresh samples): add those or drop --gan-samples');
  if (cfg.ganBatchSize > 0 && !cfg.gan) throw new DMDSetupError(`--gan-batch-size ${cfg.ganBatchSize} sets how many samples the GAN judges, which only --gan adds: add --gan or drop --gan-batch-size`);
  if (cfg.ganBatchSize > cfg.batchSize) throw new DMDSetupError(`--gan-batch-size ${cfg.ganBatchSize} is larger than the batch (--batch-size ${cfg.batchSize}): give at most ${cfg.batchSize}`);
  if (cfg.ganBatchSize > 0 && cfg.ganBatchSize < cfg.batchSize && cfg.lambdaDm > 0)
    throw new DMDSetupError(`--gan-batch-size ${cfg.ganBatchSize} below --batch-size ${cfg.batchSize} needs --lambda-dm 0: distribution matching and the fake score judge the whole batch of fresh samples`);
  if (cfg.recipe === 'sd15-dmd' && !cfg.pairs)
    throw new DMDSetupError('--recipe sd15-dmd regresses onto teacher pairs: give --pairs DIR (dmd pairs --teacher T --prompts P --out DIR) or --pairs auto');
  if (cfg.lambdaDm === 0 && !(cfg.pairs && cfg.lambdaReg > 0) && !cfg.gan)
    throw new DMDSetupError('--lambda-dm 0 leaves no loss for the generator: give --pairs (regression only) or --gan');
  if (cfg.dmStart > 0 && !(cfg.pairs && cfg.lambdaReg > 0))
    throw new DMDSetupError(`--dm-start ${cfg.dmStart} trains by regression alone first, which needs --pairs (and --lambda-reg > 0)`);
  if ((cfg.dmStart > 0 || cfg.fakeWarmup > 0) && cfg.lambdaDm === 0 && !cfg.gan)
    throw new DMDSetupError('--dm-start and --fake-warmup schedule distribution matching, which --lambda-dm 0 turns off');
  return cfg;
}

/** What every process of a data-parallel run must hold the same: the run's settings, the teacher's hash and size. */
export function runFingerprint(cfg: DMDConfig, teacher: LoadedTeacher): Record<string, unknown> {
  return {
    ...settingsIdentity(cfg, ['teacher', 'prompts']), steps: cfg.steps, dist_same_noise: cfg.distSameNoise, teacher_sha256: teacher.sha256, teacher_parameters: teacher.model.parameterCount(),
    prompts_sha256: teacher.prompts?.sha256 ?? null,
  };
}

/** This process's place in the job, its device and the seed of its random streams. */
export interface RunPlace {
  dist: Distributed;
  device: Device;
  /** rank 0's seed is the run's: a single-process run and rank 0 of a job draw the same */
  rankSeed: number;
  /** the test mode of multi-process runs (every rank draws the global batch's randomness) */
  sameNoise: boolean;
}

export function joinRun(cfg: DMDConfig): RunPlace {
  const { dist, device } = Distributed.forCommand(cfg);
  const sameNoise = cfg.distSameNoise && dist.size > 1;
  const rankSeed = dist.rank && !sameNoise ? deriveSeed(cfg.seed, 1_000_000 + dist.rank) : cfg.seed;
  checkExecutionDType(device, cfg.dtype);
  configureKernels(device, cfg);
  return { dist, device, rankSeed, sameNoise };
}

export interface LoadedTeacher {
  /** the teacher file ('<in-memory teacher>' for one given as a model) */
  path: string;
  /** SHA-256 of the file: what pairs, checkpoints and the exported generator are checked against */
  sha256: string;
  /** the real score: frozen, in eval mode */
  model: ScoreModel;
  /** whether it came from a file (pairs are then checked against its hash) */
  fromFile: boolean;
  /** the run's memory estimate per process (set once the teacher is loaded) */
  memory?: MemoryEstimate;
  /** the training prompts of a text-conditioned teacher: the file, its hash and how many */
  prompts?: { file: string; sha256: string; count: number };
}

/** The prompts an SD teacher needs and the captions its GAN needs; checked before it is loaded. */
function checkSDSettings(cfg: DMDConfig, file: string): void {
  if (!cfg.prompts) throw new DMDSetupError(`--teacher ${file} is a Stable Diffusion model: give the training prompts with --prompts FILE (one per line, or JSON Lines with a "text" field)`);
  if (cfg.gan && cfg.data && !isLatentsDir(cfg.data) && !openDataset(cfg.data).captions)
    throw new DMDSetupError(`--gan with a Stable Diffusion teacher needs captioned real images: --data ${cfg.data} has no captions (give a folder or EDM .zip of PNG/JPEG images with a .txt caption beside each, WebDataset .tar shards with captions, or their latents from dmd latents)`);
}

/** Loads an SD v1 teacher with its training prompts (see dmd/models/sd.ts). */
function loadSD(cfg: DMDConfig, file: string, device: Device, log: (s: string) => void): LoadedTeacher {
  checkSDSettings(cfg, file);
  const promptsFile = path.resolve(cfg.prompts!);
  const prompts = readPrompts(promptsFile);
  const model = loadSDTeacher(file, { device, prompts, resolution: cfg.resolution, teacherConfig: cfg.teacherConfig, dtype: cfg.dtype, checkpointing: cfg.activationCheckpointing, warn: (m) => log(`warning: ${m}`) });
  return { path: file, sha256: pathSha256(file), model, fromFile: true, prompts: { file: promptsFile, sha256: pathSha256(promptsFile), count: prompts.length } };
}

/**
 * Loads the teacher (or copies one given in memory) on the device, frozen, after checking that the
 * batch fits in memory and that the settings suit it.
 */
export function loadTeacher(cfg: DMDConfig, device: Device, log: (s: string) => void, given?: ScoreModel): LoadedTeacher {
  let t: LoadedTeacher;
  if (given) {
    t = { path: '<in-memory teacher>', sha256: '<in-memory teacher>', model: given.clone(), fromFile: false };
  } else {
    const file = path.resolve(cfg.teacher ?? defaultTeacherPath());
    if (cfg.teacher && isStableDiffusion(file)) {
      t = loadSD(cfg, file, device, log);
    } else {
      if (cfg.prompts) throw new DMDSetupError(`--prompts is for Stable Diffusion teachers; ${file} is an EDM teacher (class-conditional: it takes no text)`);
      if (cfg.resolution !== undefined || cfg.teacherConfig || cfg.activationCheckpointing)
        throw new DMDSetupError(`--resolution, --teacher-config and --activation-checkpointing are for Stable Diffusion teachers; ${file} is an EDM teacher`);
      const model = loadEDMTeacher(file, device); // first: it names a missing or damaged file
      t = { path: file, sha256: pathSha256(file), model, fromFile: true };
    }
  }
  try {
    t.memory = dmdMemoryEstimate(cfg, t.model);
    const hint = t.model.family === 'sd' ? `use a device with more memory${cfg.activationCheckpointing ? '' : ', or --activation-checkpointing'}${cfg.dtype === 'float32' ? ', --dtype bfloat16' : ''}, or a smaller --resolution` : 'use a device with more memory';
    const warn = checkMemory(t.memory, cfg.batchSize, device, hint);
    if (warn) log(`warning: ${warn}`);
    if (cfg.realGuidance !== 1 && !t.model.guidable) throw new DMDSetupError('--real-guidance needs a teacher with an unconditional branch (a class-conditional EDM teacher, or a text-to-image one)');
  } catch (e) {
    t.model.dispose();
    throw e;
  }
  t.model.eval().requiresGrad_(false);
  return t;
}
