// The shared training-run loop: yields to the event loop between steps (so SIGINT can be handled
// and GC finalizers run), stops on non-finite losses keeping the last good checkpoint, and writes a
// checkpoint when interrupted.

export class NonFiniteLossError extends Error {
  readonly code = 'ERR_NON_FINITE_LOSS';
}

export interface LoopHooks {
  /** the current step count (already completed steps) */
  step(): number;
  total: number;
  /** one training step; returns its scalar metrics */
  runStep(): Record<string, number>;
  /** called after each step with its metrics */
  afterStep(step: number, metrics: Record<string, number>): void;
  /** write a checkpoint now (interrupt, end) */
  checkpoint(reason: 'interrupt' | 'end'): void;
  /** names of metrics that must stay finite */
  finite?: readonly string[];
}

export async function runLoop(h: LoopHooks): Promise<'done' | 'interrupted'> {
  let interrupted = false;
  const onSig = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
  };
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);
  try {
    while (h.step() < h.total) {
      await new Promise<void>((r) => setImmediate(r));
      if (interrupted) {
        h.checkpoint('interrupt');
        return 'interrupted';
      }
      const m = h.runStep();
      for (const k of h.finite ?? Object.keys(m)) {
        const v = m[k];
        if (v !== undefined && !Number.isFinite(v))
          throw new NonFiniteLossError(
            `${k} became ${v} at step ${h.step()}; stopping without saving this state (the last good checkpoint is kept). ` +
              'Lower the learning rate, enable gradient clipping, or resume from the last checkpoint.',
          );
      }
      h.afterStep(h.step(), m);
    }
    h.checkpoint('end');
    return 'done';
  } finally {
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  }
}
