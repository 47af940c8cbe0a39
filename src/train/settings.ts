// The settings every training run shares (run directory, resuming, intervals) as zod fields, and the
// part of a command's settings that defines a run (what --resume compares). No tensors here: config
// parsing stays independent of the native addon.
import { z } from 'zod';
import { DISTRIBUTED_KEYS } from '../util/fields.js';

/** The settings every run shares (zod fields; per-command defaults for the intervals). */
export function runSettingsShape(d: { checkpointEvery: number; metricsEvery: number; out?: string }) {
  const out = z.string().min(1, 'must not be empty').describe('run directory: checkpoints/, samples, metrics.jsonl, run.json');
  return {
    out: d.out === undefined ? out : out.default(d.out),
    resume: z.boolean().default(false).describe('continue from the newest readable checkpoint in --out'),
    resumeFrom: z.string().min(1).optional().describe('continue from this checkpoint file (e.g. an older one)'),
    forceResume: z.boolean().default(false).describe('resume even though the checkpoint was made with other settings (warned; not bit-exact)'),
    checkpointEvery: z.number().int().positive().default(d.checkpointEvery).describe('steps between checkpoints'),
    keepCheckpoints: z.number().int().positive().default(3).describe('checkpoints kept'),
    metricsEvery: z.number().int().positive().default(d.metricsEvery).describe('steps between metrics.jsonl records'),
  };
}

/** Keys of a command's settings that may change between a run and its resume (operation, length, device). */
const OPERATIONAL = ['out', 'resume', 'resumeFrom', 'forceResume', 'checkpointEvery', 'keepCheckpoints', 'sampleEvery', 'metricsEvery', 'device', 'tf32', 'deterministic', 'activationCheckpointing', 'evalEvery', 'evalNum', 'evalRef', 'evalRefNum', 'finalEval', 'classifier', ...DISTRIBUTED_KEYS, 'distSameNoise'];

/** The settings that define a run (what --resume compares): all but the operational ones and `also`. */
export function settingsIdentity(cfg: Record<string, unknown>, also: readonly string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(cfg)) if (!OPERATIONAL.includes(k) && !also.includes(k) && v !== undefined) out[k] = v;
  return out;
}

/** The interval of sample grids, for runs that make them. */
export function sampleEveryField(d: number) {
  return z.number().int().positive().default(d).describe('steps between sample grids of fixed noises');
}

export interface RunSettings {
  out: string;
  resume: boolean;
  resumeFrom?: string | undefined;
  forceResume: boolean;
  checkpointEvery: number;
  keepCheckpoints: number;
  /** absent for runs without samples */
  sampleEvery?: number | undefined;
  metricsEvery: number;
}
