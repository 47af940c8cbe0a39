// Everything a DMD run checks and loads before its first step, as functions that can be called and
// tested alone: the settings (recipe applied, combinations that cannot work refused before any network
// is loaded), this process's place in a data-parallel job, and the teacher (its file, hash, memory fit).
import path from 'node:path';
import { deriveSeed } from '../tensor/random.js';
import { type Device, checkExecutionDType, configureKernels } from '../tensor/device.js';
import { defaultTeacherPath } from '../edm/default-teacher.js';
import { fileSha256 } from '../util/fs.js';
import { formatZodError } from '../util/zod.js';
import { checkBatchMemory } from '../train/memory.js';
import { settingsIdentity } from '../train/settings.js';
import { Distributed } from '../distributed/context.js';
import { DMDConfigSchema, type DMDConfig } from './config.js';
import { applyRecipe } from './recipes.js';
import { loadEDMTeacher } from './models/edm.js';
import type { ScoreModel } from './score-model.js';

export class DMDSetupError extends Error {
  readonly code = 'ERR_DMD_SETUP';
}

/** dmd-train's settings with the recipe applied, validated, and their combinations checked. */
export function parseDMDSettings(config: Partial<DMDConfig> & Record<string, unknown>, o: { teacherInMemory?: boolean } = {}): DMDConfig {
  const parsed = DMDConfigSchema.strict().safeParse(applyRecipe(config, o));
  if (!parsed.success) throw new DMDSetupError(`invalid DMD settings: ${formatZodError(parsed.error)}`);
  const cfg = parsed.data;
  // before any network is loaded: the trainer's constructor cannot make the pairs (DMDTrainer.create does)
  if (cfg.pairs === 'auto') throw new DMDSetupError("--pairs auto must be resolved before the trainer is built: use await DMDTrainer.create(settings) (dmd-train does), or give a pairs directory");
  if (cfg.minStepPercent > cfg.maxStepPercent) throw new DMDSetupError('--min-step-percent must not exceed --max-step-percent');
  if (cfg.sigmaMin >= cfg.sigmaMax) throw new DMDSetupError(`--sigma-min (${cfg.sigmaMin}) must be below --sigma-max (${cfg.sigmaMax})`);
  if (cfg.regression === 'lpips' && cfg.pairs && !cfg.lpips)
    throw new DMDSetupError("--regression lpips needs LPIPS weights: pass --lpips <dir with torchvision's vgg16-397923af.pth and LPIPS's vgg.pth>, or choose --regression l2|l1|pseudo-huber");
  if (cfg.gan && !cfg.data) throw new DMDSetupError('--gan needs real images: pass --data (e.g. fashion-mnist)');
  if (cfg.lambdaDm === 0 && !(cfg.pairs && cfg.lambdaReg > 0) && !cfg.gan)
    throw new DMDSetupError('--lambda-dm 0 leaves no loss for the generator: give --pairs (regression only) or --gan');
  return cfg;
}

/** What every process of a data-parallel run must hold the same: the run's settings, the teacher's hash and size. */
export function runFingerprint(cfg: DMDConfig, teacher: LoadedTeacher): Record<string, unknown> {
  return { ...settingsIdentity(cfg, ['teacher']), steps: cfg.steps, dist_same_noise: cfg.distSameNoise, teacher_sha256: teacher.sha256, teacher_parameters: teacher.model.parameterCount() };
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
    const model = loadEDMTeacher(file, device);
    t = { path: file, sha256: fileSha256(file), model, fromFile: true };
  }
  try {
    const warn = checkBatchMemory(cfg.batchSize, t.model.trainingBytesPerImage(24, cfg.dtype), device);
    if (warn) log(`warning: ${warn}`);
    if (cfg.realGuidance !== 1 && t.model.conditionDim === 0) throw new DMDSetupError('--real-guidance needs a class-conditional teacher');
  } catch (e) {
    t.model.dispose();
    throw e;
  }
  t.model.eval().requiresGrad_(false);
  return t;
}
