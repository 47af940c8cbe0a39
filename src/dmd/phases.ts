// The schedule of a DMD run's iterations: regression alone before --dm-start (the generator's turn
// only), then --fake-warmup iterations of the fake score alone, then DMD proper: the fake score's turn
// every iteration and the generator's every fakeUpdatesPerGen-th, counted from DMD's start.

export type DMDPhase = 'regression' | 'fake-warmup' | 'dmd';

export interface PhaseSettings {
  dmStart: number;
  fakeWarmup: number;
  fakeUpdatesPerGen: number;
}

export function phaseOf(step: number, s: PhaseSettings): DMDPhase {
  if (step < s.dmStart) return 'regression';
  return step < s.dmStart + s.fakeWarmup ? 'fake-warmup' : 'dmd';
}

/** Which turns iteration `step` has (`critic`: whether the run trains a fake score at all). */
export function turnsOf(step: number, s: PhaseSettings, critic: boolean): { phase: DMDPhase; generator: boolean; fake: boolean } {
  const phase = phaseOf(step, s);
  const dmdStep = step - s.dmStart - s.fakeWarmup;
  const generator = phase === 'regression' || (phase === 'dmd' && (!critic || dmdStep % s.fakeUpdatesPerGen === 0));
  return { phase, generator, fake: critic && phase !== 'regression' };
}
