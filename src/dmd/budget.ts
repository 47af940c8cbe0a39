// --budget: the bundled Fashion-MNIST teacher's default recipe planned for a number of minutes of a
// 2-core CPU, from the costs and the budget curves measured in experiments/fmnist-budget. Below the
// crossing point (10 minutes), regression alone on the cached teacher pairs is the best use of the
// time. From it on (the default 20 included), regression runs for a short phase, a GAN head on the frozen
// teacher's bottleneck warms up on the fixed generator, and then the regression goes on beside that GAN
// (no distribution matching and no fake score: a generator update every iteration), the head judging
// clean samples against real Fashion-MNIST images (below 34 minutes 8 of the batch's 32 and on 512 pairs,
// which is cheaper and, at those budgets, better).
// For the longest budgets regression runs until it has nearly levelled off, the fake score and DMD2's
// head warm up, and DMD2 takes over beside the regression: distribution matching (fake:gen 5, weighted so
// that it is comparable with the regression) and the GAN at 100x its published generator weight. Without
// the GAN (--no-gan) the phased recipe is distribution matching alone after the regression phase, and
// only in the window where it was measured ahead; outside it, regression alone.
import type { DMDPhase } from './phases.js';
import { DMDConfigSchema } from './config.js';

/** --auto-pairs's default: the count BUNDLED_COSTS.pairsSeconds was measured for */
const DEFAULT_PAIRS = DMDConfigSchema.shape.autoPairs.parse(undefined);

/**
 * Seconds of each part of a run with the bundled teacher on the reference machine (2-core x86 VM, libtorch
 * 1.13.1 CPU, reference BLAS). The pairs, regression and teacher-GAN costs were measured again after the
 * resampling layers moved to the pooling kernels (2026-12-03, machine idle); the fake-score and DMD costs
 * are the earlier measurements (slightly high now: those plans end a little early).
 */
export const BUNDLED_COSTS = {
  /** making the 1024 Heun-18 pairs of --pairs auto in batches of 32 (first run only; cached after it; fewer take their share) */
  pairsSeconds: 255,
  /** the final evaluation of 1000 samples */
  finalEvalSeconds: 20,
  /** one iteration of regression alone */
  regression: 0.564,
  /** one fake-score warm-up iteration */
  fakeWarmup: 0.69,
  /** one DMD iteration at fake:gen 5 */
  dmd: 1.02,
  /** one DMD2 iteration at fake:gen 5 with regression and the GAN */
  dmd2: 1.21,
  /** one warm-up iteration of the GAN head on the frozen teacher (the head alone) */
  teacherGanWarmup: 0.281,
  /** one iteration of regression beside the GAN on the frozen teacher (generator and head turns) */
  teacherGan: 1.315,
  /**
   * the same two with the GAN judging TEACHER_GAN_BATCH of the 32 samples: 0.28x and 0.62x of the above
   * (measured side by side on the idle VM, 2026-12-04: 0.082 against 0.296 s, 0.785 against 1.263 s; a
   * second measurement of the iteration gave 0.55x, the plan takes the slower one)
   */
  teacherGanWarmupSmallBatch: 0.078,
  teacherGanSmallBatch: 0.817,
} as const;

/** The default budget of the no-flag run (minutes). */
export const DEFAULT_BUDGET_MINUTES = 20;
/**
 * Budgets from this one on (minutes) get regression beside the GAN on the frozen teacher (unless --no-gan),
 * the default's included. Below TEACHER_GAN_SMALL_BATCH_BELOW_MINUTES the recipe regresses on 512 pairs
 * (half the time to make them) and its GAN judges 8 of the batch's 32 samples; its first checkpoint in
 * the GAN phase (1050 iterations, 9.3 minutes with the pairs) scored EMA FD 0.733 and 0.726 at two seeds,
 * against about 0.79 for regression alone on 1024 pairs in the same time (0.783 at 600 iterations), and
 * at 20 minutes (1835 iterations) 0.619 and 0.624 against regression alone's 0.710 (1640 iterations).
 * At 10 minutes the plan makes 1101 iterations; below it regression alone (the GAN phase would be shorter
 * than any point measured).
 */
export const TEACHER_GAN_FROM_MINUTES = 10;
/** Without the GAN (--no-gan), budgets from this one on (minutes) get a phased recipe: below it regression alone scores better at equal time. */
export const CROSSING_MINUTES = 42;
/**
 * Budgets from this one on (minutes) get DMD2's recipe (unless --no-gan): where its measured score (5000
 * samples, two sampling seeds, two runs: 0.556 / 0.553 and 0.570 / 0.571 at 63.9 minutes of training)
 * reaches what the teacher-GAN recipe with a 50-iteration warm-up and generator weight 0.3 scored at 40.8
 * minutes (0.560; EMA 0.636 on 1000 samples). Today's teacher-GAN settings were ahead of those at every
 * time measured (EMA 0.625 and 0.640 at two seeds at 23.6 minutes of training; seed 0 0.578 at 30.8, 1950
 * iterations, still improving), so from 33 minutes (1953 iterations) to this budget the plan runs them past
 * their last measured point; DMD2's recipe scored 0.584-0.586 at 45.7 minutes of training and 0.576-0.586 at 51.7
 * (5000 samples).
 */
export const GAN_FROM_MINUTES = 69;
/**
 * Without the GAN, budgets from this one on (minutes) get regression alone again: at 62 minutes (58 of
 * training) regression alone is level with distribution matching after the regression phase (5000
 * samples, two seeds: 0.595 / 0.601 against 0.600 / 0.602) and still improving, while the phased run has stopped.
 */
export const PHASED_UNTIL_MINUTES = 62;
/** The regression phase of the phased DM recipe: where regression alone on 1024 pairs has nearly levelled off (EMA FD 0.701; 0.690 at 3600). */
export const PHASED_DM_START = 2400;
/** The regression phase of the GAN recipe: the GAN was measured branched off regression alone here (EMA FD 0.690). */
export const GAN_DM_START = 3600;
/** The regression phase of the teacher-GAN recipe: its GAN was measured branched off regression alone here (EMA FD 0.783). */
export const TEACHER_GAN_DM_START = 600;
/**
 * The teacher-GAN head's warm-up (iterations of the head alone on the fixed generator): long enough that the
 * head tells the generator's samples from real ones (mean outputs 0.60 / 0.41) before the generator's GAN
 * turns begin. With 50 (and generator weight 0.3) the same scores came later: EMA FD 0.69-0.70 about 3 minutes
 * of training later, 1.2x the teacher 17 minutes later.
 */
export const TEACHER_GAN_WARMUP = 400;
/**
 * Budgets below this one (minutes) run the teacher-GAN recipe light: on TEACHER_GAN_SMALL_BATCH_PAIRS pairs
 * (made in half the time of 1024, and fitted sooner: EMA FD 0.763 after the 600 regression iterations
 * against 0.783 on 1024) with the GAN judging TEACHER_GAN_BATCH of the batch's 32 samples (0.62x the
 * iteration's cost). At equal budgets it was ahead of the whole batch on 1024 pairs wherever both were
 * measured (two seeds each, EMA FD, 1000 samples): 20 minutes 0.619 / 0.624 (1835 iterations) against
 * 0.679 / 0.698 (1360), 25.6 minutes 0.583 / 0.603 (2250) against about 0.63 / 0.645 (1620), 29.7
 * minutes 0.542 / 0.563 (2550: 1.02x / 1.06x the teacher) against 0.610 (1800, seed 0 only). From 30 to 33 minutes the plan runs it
 * past its last measured point (up to 2800 iterations), where the whole batch was measured last (0.578 at
 * 1950, 32.9 minutes); from 34 on, the whole batch on 1024 pairs.
 */
export const TEACHER_GAN_SMALL_BATCH_BELOW_MINUTES = 34;
/** The teacher-GAN's batch below TEACHER_GAN_SMALL_BATCH_BELOW_MINUTES (of 32; at 16 and 4 it was behind 8 at equal time, on 1024 pairs) */
export const TEACHER_GAN_BATCH = 8;
/** The pairs --pairs auto makes for the teacher-GAN recipe below TEACHER_GAN_SMALL_BATCH_BELOW_MINUTES (on 256 the recipe was level with 512 at 1200 iterations, 0.691 / 0.665 against 0.691 / 0.679, and not measured further) */
export const TEACHER_GAN_SMALL_BATCH_PAIRS = 512;
/** The teacher-GAN's generator weight (after the same warm-up, 0.3 and 3 were behind it at 16.4 minutes of training) */
export const TEACHER_GAN_GEN_WEIGHT = 1;
/** The teacher-GAN head's loss weight (10x DMD2's 1e-2) */
export const TEACHER_GAN_HEAD_WEIGHT = 0.1;
export const PHASED_FAKE_WARMUP = 150;
/** distribution matching's weight in the phased recipes: its gradient then has 0.4-1x the regression's norm in the generator's weights */
export const PHASED_LAMBDA_DM = 10;
/**
 * The GAN's generator weight in the GAN recipe: 100x DMD2's 3e-3, where it is 11-18% of the optimizer's
 * gradient of the generator (at 10x it was 4-10% and changed nothing)
 */
export const GAN_GEN_WEIGHT = 0.3;

/** The teacher-GAN recipe's seconds per head warm-up iteration and per iteration, at its GAN batch (--gan-batch-size). */
function teacherGanCosts(ganBatchSize: number | undefined): { warmup: number; iteration: number } {
  const c = BUNDLED_COSTS;
  return ganBatchSize === TEACHER_GAN_BATCH ? { warmup: c.teacherGanWarmupSmallBatch, iteration: c.teacherGanSmallBatch } : { warmup: c.teacherGanWarmup, iteration: c.teacherGan };
}

/** The settings a plan fixes (dmd-train's flags of the same names). */
export interface BudgetPlan {
  steps: number;
  lambdaDm: number;
  dmStart: number;
  fakeWarmup: number;
  fakeUpdatesPerGen: number;
  emaDecay: number;
  /** the GAN recipes: a GAN on clean samples against real Fashion-MNIST images */
  gan?: true;
  diffusionGan?: false;
  ganGenWeight?: number;
  data?: string;
  /** the teacher-GAN recipe: the head on the frozen teacher's bottleneck */
  ganFeatures?: 'teacher';
  ganHeadWeight?: number;
  /** the teacher-GAN recipe's GAN batch at short budgets */
  ganBatchSize?: number;
  /** how many pairs --pairs auto makes (unset: the schema's 1024) */
  autoPairs?: number;
}

export class BudgetError extends Error {
  readonly code = 'ERR_DMD_BUDGET';
}

/**
 * The iteration counts that fill `minutes` of the reference machine (pairs and the final evaluation
 * included); `gan: false` plans without the GAN (for --no-gan, or a run with no real images).
 */
export function planBudget(minutes: number, o: { gan?: boolean } = {}): BudgetPlan {
  const c = BUNDLED_COSTS;
  const secondsWith = (pairs: number) => minutes * 60 - (c.pairsSeconds * pairs) / DEFAULT_PAIRS - c.finalEvalSeconds;
  const seconds = secondsWith(DEFAULT_PAIRS);
  const minimum = (c.pairsSeconds + c.finalEvalSeconds + 200 * c.regression) / 60;
  if (!(seconds >= 200 * c.regression)) throw new BudgetError(`--budget ${minutes} is too short: making the pairs and evaluating take ${((c.pairsSeconds + c.finalEvalSeconds) / 60).toFixed(1)} min of it; give at least ${Math.ceil(minimum)} minutes, or --steps`);
  const ganOk = o.gan ?? true;
  const gan = ganOk && minutes >= GAN_FROM_MINUTES;
  // a phased plan: regression alone for dmStart iterations, `warmup` warm-up iterations, then as many of the last phase as fit
  const phased = (dmStart: number, warmup: number, warmupCost: number, perIteration: number, left = seconds) =>
    ({ steps: dmStart + warmup + Math.floor((left - dmStart * c.regression - warmup * warmupCost) / perIteration), dmStart, fakeWarmup: warmup, emaDecay: 0.99 });
  const ganImages = { gan: true, diffusionGan: false, ganGenWeight: GAN_GEN_WEIGHT, data: 'fashion-mnist' } as const;
  if (ganOk && !gan && minutes >= TEACHER_GAN_FROM_MINUTES) {
    const small = minutes < TEACHER_GAN_SMALL_BATCH_BELOW_MINUTES;
    const ganBatchSize = small ? TEACHER_GAN_BATCH : undefined;
    const cost = teacherGanCosts(ganBatchSize);
    return {
      ...phased(TEACHER_GAN_DM_START, TEACHER_GAN_WARMUP, cost.warmup, cost.iteration, secondsWith(small ? TEACHER_GAN_SMALL_BATCH_PAIRS : DEFAULT_PAIRS)),
      lambdaDm: 0, fakeUpdatesPerGen: 1, ...ganImages, ganGenWeight: TEACHER_GAN_GEN_WEIGHT, ganFeatures: 'teacher', ganHeadWeight: TEACHER_GAN_HEAD_WEIGHT,
      ...(small && { ganBatchSize, autoPairs: TEACHER_GAN_SMALL_BATCH_PAIRS }),
    };
  }
  if (!gan && (minutes < CROSSING_MINUTES || minutes >= PHASED_UNTIL_MINUTES)) return { steps: Math.floor(seconds / c.regression), lambdaDm: 0, dmStart: 0, fakeWarmup: 0, fakeUpdatesPerGen: 1, emaDecay: 0.99 };
  return {
    ...phased(gan ? GAN_DM_START : PHASED_DM_START, PHASED_FAKE_WARMUP, c.fakeWarmup, gan ? c.dmd2 : c.dmd),
    lambdaDm: PHASED_LAMBDA_DM, fakeUpdatesPerGen: 5, ...(gan && ganImages),
  };
}

/** Whether settings are the default recipe of the bundled Fashion-MNIST teacher: the only run --budget plans. */
export function isBundledDefault(recipe: unknown, teacher: unknown, teacherInMemory = false): boolean {
  return (recipe ?? 'default') === 'default' && teacher === undefined && !teacherInMemory;
}

/**
 * The budget (minutes) a run was planned for: the default recipe with the bundled teacher, its length
 * set by the plan (not by --steps); null for any other run.
 */
export function plannedMinutes(cfg: { recipe?: string | undefined; teacher?: string | undefined; budget?: number | undefined; steps: number; gan?: boolean | undefined }, teacherInMemory = false): number | null {
  if (!isBundledDefault(cfg.recipe, cfg.teacher, teacherInMemory)) return null;
  const minutes = cfg.budget ?? DEFAULT_BUDGET_MINUTES;
  try {
    return planBudget(minutes, { gan: cfg.gan === true }).steps === cfg.steps ? minutes : null;
  } catch {
    return null;
  }
}

/**
 * What to tell the user of a planned run once its iterations are timed on this machine: null within 20%
 * of the reference machine's speed, else how long the run will take here and the budget that fits the
 * minutes asked for (the whole plan, pairs and evaluation included, is taken to scale alike). `gan`:
 * whether the run's DMD iterations include the GAN (as the plan's do from TEACHER_GAN_FROM_MINUTES on),
 * `ganFeatures`: what its head reads ('teacher': the teacher-GAN recipe, no fake score).
 */
export function budgetSpeedNotice(minutes: number, phase: DMDPhase, secondsPerIteration: number, o: { gan?: boolean; ganFeatures?: 'fake' | 'teacher'; ganBatchSize?: number } = {}): string | null {
  const c = BUNDLED_COSTS;
  const teacherGan = o.gan === true && o.ganFeatures === 'teacher';
  const tg = teacherGanCosts(o.ganBatchSize);
  const reference = phase === 'regression' ? c.regression : phase === 'fake-warmup' ? (teacherGan ? tg.warmup : c.fakeWarmup) : teacherGan ? tg.iteration : o.gan ? c.dmd2 : c.dmd;
  const ratio = secondsPerIteration / reference;
  if (ratio <= 1.2 && ratio >= 1 / 1.2) return null;
  const took = `--budget ${minutes}: this machine takes ${secondsPerIteration.toFixed(2)} s per ${phase} iteration where the plan assumes ${reference} s (a 2-core reference VM), so the run will take about ${Math.round(minutes * ratio)} minutes`;
  const fit = Math.floor(minutes / ratio);
  let fits: string;
  try {
    planBudget(fit, o);
    fits = `--budget ${fit} fits ${minutes} minutes here`;
  } catch {
    fits = `${minutes} minutes here are too short for a plan; give --steps`;
  }
  return `${took}; ${fits} (the plan's quality figures are per iteration, not per minute)`;
}
