// --budget: the bundled Fashion-MNIST teacher's default recipe planned for a number of minutes of a
// 2-core CPU, from the costs and the budget curves measured in experiments/fmnist-budget. Below the
// crossing point, regression alone on the cached teacher pairs is the best use of the time; in the
// window where distribution matching was measured ahead, regression runs until it has nearly levelled
// off, the fake score warms up on the fixed generator, and distribution matching (fake:gen 5, weighted
// so that it is comparable with the regression) takes over; past the window regression alone has caught
// up and keeps improving, so the plan is regression alone again.
import type { DMDPhase } from './phases.js';

/** Seconds of each part of a run with the bundled teacher on the reference machine (2-core x86 VM, libtorch 1.13.1 CPU). */
export const BUNDLED_COSTS = {
  /** making the 1024 Heun-18 pairs of --pairs auto (first run only; cached after it) */
  pairsSeconds: 258,
  /** the final evaluation of 1000 samples */
  finalEvalSeconds: 20,
  /** one iteration of regression alone */
  regression: 0.58,
  /** one fake-score warm-up iteration */
  fakeWarmup: 0.69,
  /** one DMD iteration at fake:gen 5 */
  dmd: 1.02,
} as const;

/** The default budget of the no-flag run (minutes). */
export const DEFAULT_BUDGET_MINUTES = 20;
/** Budgets from this one on (minutes) get the phased recipe: below it regression alone scores better at equal time. */
export const CROSSING_MINUTES = 42;
/**
 * Budgets from this one on (minutes) get regression alone again: at 62 minutes (58 of training) regression
 * alone is level with the phased recipe (5000 samples, two seeds: 0.595 / 0.601 against 0.600 / 0.602)
 * and still improving, while the phased run has stopped.
 */
export const PHASED_UNTIL_MINUTES = 62;
/** The regression phase of the phased recipe: where regression alone on 1024 pairs has nearly levelled off (EMA FD 0.701; 0.690 at 3600). */
export const PHASED_DM_START = 2400;
export const PHASED_FAKE_WARMUP = 150;
/** distribution matching's weight in the phased recipe: its gradient then has 0.4-1x the regression's norm in the generator's weights */
export const PHASED_LAMBDA_DM = 10;

/** The settings a plan fixes (dmd-train's flags of the same names). */
export interface BudgetPlan {
  steps: number;
  lambdaDm: number;
  dmStart: number;
  fakeWarmup: number;
  fakeUpdatesPerGen: number;
  emaDecay: number;
}

export class BudgetError extends Error {
  readonly code = 'ERR_DMD_BUDGET';
}

/** The iteration counts that fill `minutes` of the reference machine (pairs and the final evaluation included). */
export function planBudget(minutes: number): BudgetPlan {
  const c = BUNDLED_COSTS;
  const seconds = minutes * 60 - c.pairsSeconds - c.finalEvalSeconds;
  const minimum = (c.pairsSeconds + c.finalEvalSeconds + 200 * c.regression) / 60;
  if (!(seconds >= 200 * c.regression)) throw new BudgetError(`--budget ${minutes} is too short: making the pairs and evaluating take ${((c.pairsSeconds + c.finalEvalSeconds) / 60).toFixed(1)} min of it; give at least ${Math.ceil(minimum)} minutes, or --steps`);
  if (minutes < CROSSING_MINUTES || minutes >= PHASED_UNTIL_MINUTES) return { steps: Math.floor(seconds / c.regression), lambdaDm: 0, dmStart: 0, fakeWarmup: 0, fakeUpdatesPerGen: 1, emaDecay: 0.99 };
  const dmSeconds = seconds - PHASED_DM_START * c.regression - PHASED_FAKE_WARMUP * c.fakeWarmup;
  return {
    steps: PHASED_DM_START + PHASED_FAKE_WARMUP + Math.floor(dmSeconds / c.dmd),
    lambdaDm: PHASED_LAMBDA_DM, dmStart: PHASED_DM_START, fakeWarmup: PHASED_FAKE_WARMUP, fakeUpdatesPerGen: 5, emaDecay: 0.99,
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
export function plannedMinutes(cfg: { recipe?: string | undefined; teacher?: string | undefined; budget?: number | undefined; steps: number }, teacherInMemory = false): number | null {
  if (!isBundledDefault(cfg.recipe, cfg.teacher, teacherInMemory)) return null;
  const minutes = cfg.budget ?? DEFAULT_BUDGET_MINUTES;
  try {
    return planBudget(minutes).steps === cfg.steps ? minutes : null;
  } catch {
    return null;
  }
}

const PHASE_COST: Record<DMDPhase, number> = { regression: BUNDLED_COSTS.regression, 'fake-warmup': BUNDLED_COSTS.fakeWarmup, dmd: BUNDLED_COSTS.dmd };

/**
 * What to tell the user of a planned run once its iterations are timed on this machine: null within 20%
 * of the reference machine's speed, else how long the run will take here and the budget that fits the
 * minutes asked for (the whole plan, pairs and evaluation included, is taken to scale alike).
 */
export function budgetSpeedNotice(minutes: number, phase: DMDPhase, secondsPerIteration: number): string | null {
  const reference = PHASE_COST[phase];
  const ratio = secondsPerIteration / reference;
  if (ratio <= 1.2 && ratio >= 1 / 1.2) return null;
  const took = `--budget ${minutes}: this machine takes ${secondsPerIteration.toFixed(2)} s per ${phase} iteration where the plan assumes ${reference} s (a 2-core reference VM), so the run will take about ${Math.round(minutes * ratio)} minutes`;
  const fit = Math.floor(minutes / ratio);
  let fits: string;
  try {
    planBudget(fit);
    fits = `--budget ${fit} fits ${minutes} minutes here`;
  } catch {
    fits = `${minutes} minutes here are too short for a plan; give --steps`;
  }
  return `${took}; ${fits} (the plan's quality figures are per iteration, not per minute)`;
}
