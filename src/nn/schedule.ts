// Learning-rate schedules: step -> multiplier of the base rate.

export type Schedule = (step: number) => number;

/** Linear warm-up from 0 over warmupSteps, then constant (DMD2's "constant_with_warmup"). */
export function warmup(warmupSteps: number): Schedule {
  if (!(warmupSteps >= 0)) throw new RangeError('warmup steps must be >= 0');
  return (step) => (warmupSteps === 0 ? 1 : Math.min(1, step / warmupSteps));
}

/**
 * A schedule whose last decaySteps of totalSteps fall linearly towards 0 (warm-up, constant, decay): the
 * multiplier of step i (1-based) in the decay is (totalSteps - i + 1) / decaySteps, so the last step still
 * moves. decaySteps 0 leaves the schedule as it is.
 */
export function withLinearDecay(base: Schedule, totalSteps: number, decaySteps: number): Schedule {
  if (!(decaySteps >= 0)) throw new RangeError('decay steps must be >= 0');
  if (decaySteps === 0) return base;
  const start = totalSteps - decaySteps;
  return (step) => base(step) * (step <= start ? 1 : Math.max(0, totalSteps - step + 1) / decaySteps);
}

/** EDM's ramp-up in images: min(nimg / (rampup_kimg * 1000), 1). */
export function edmRampup(rampupKimg: number): (nimg: number) => number {
  return (nimg) => Math.min(nimg / Math.max(rampupKimg * 1000, 1e-8), 1);
}

/** Linear warm-up over warmupSteps, then a cosine decay to 0 at totalSteps (the evaluation classifier's schedule). */
export function warmupCosine(warmupSteps: number, totalSteps: number): Schedule {
  return (step) => Math.min(1, step / Math.max(warmupSteps, 1)) * (0.5 + 0.5 * Math.cos((Math.PI * step) / Math.max(totalSteps, 1)));
}
