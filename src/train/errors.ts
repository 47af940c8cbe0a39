// Errors of training runs: run directories, checkpoints and resuming.

/** A problem with a run's directory, its checkpoints or a resume (message names the file and the fix). */
export class RunError extends Error {
  readonly code = 'ERR_RUN';
}

/** A loss or the weights became NaN/Inf; the run stops without saving that state. */
export class NonFiniteLossError extends Error {
  readonly code = 'ERR_NON_FINITE_LOSS';
}
