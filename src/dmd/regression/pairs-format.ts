// The settings of `dmd pairs` and the pairs directory's manifest (pairs.json): what pairs.ts writes and
// reads, and what pair-teachers.ts checks a teacher against.
import { z } from 'zod';
import { readShardedManifest } from '../../io/sharded.js';
import { fields, distributedShape } from '../../util/fields.js';

export const PairsConfigSchema = z.object({
  teacher: z.string().min(1).optional().describe('teacher file (EDM .pkl snapshot, .pt or .safetensors, or a Stable Diffusion v1 checkpoint or diffusers folder); default: the bundled Fashion-MNIST teacher'),
  out: z.string().min(1, 'must not be empty').describe('output directory (pairs.json + shards)'),
  count: z.number().int().positive().default(10000).describe('number of pairs (DMD used 100k for CIFAR-10)'),
  steps: z.number().int().positive().optional().describe('sampler steps: EDM Heun (NFE = 2 steps - 1; default 18) or SD DDIM (default 50)'),
  prompts: z.string().min(1).optional().describe('the prompts of a Stable Diffusion teacher: a file, one per line or JSON Lines with a "text" field (the same file as dmd-train --prompts)'),
  resolution: z.number().int().positive().optional().describe("SD image size in pixels, a multiple of 8 (default: the model's)"),
  teacherConfig: z.string().min(1).optional().describe('an LDM config (v1-inference.yaml) giving the architecture of an SD --teacher checkpoint'),
  sigmaMin: z.number().positive().default(0.002).describe('sampler sigma_min'),
  sigmaMax: z.number().positive().default(80).describe('sampler sigma_max'),
  rho: z.number().positive().default(7).describe('sampler rho'),
  guidance: z.number().positive().optional().describe('classifier-free guidance weight of the teacher (1 = none; default: EDM 1, SD 3 as DMD)'),
  labels: z.enum(['balanced', 'random']).default('balanced').describe('class labels (or prompts): cycled through, or drawn uniformly'),
  shardSize: z.number().int().positive().default(1000).describe('pairs per shard file'),
  batchSize: z.number().int().min(0).max(1 << 20).default(0).describe('samples per teacher batch (0: by teacher and device: an EDM teacher 32 on a CPU and 128 on a GPU, a Stable Diffusion teacher 16)'),
  seed: fields.seed('noise seed'),
  device: fields.device(),
  ...distributedShape(),
});
export type PairsConfig = z.infer<typeof PairsConfigSchema>;

const PairsManifestSchema = z.object({
  format: z.literal('dmd-torch/pairs'),
  version: z.literal(1),
  teacher: z.object({ file: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  sampler: z.union([
    z.object({ solver: z.literal('heun'), numSteps: z.number().int().positive(), sigmaMin: z.number().positive(), sigmaMax: z.number().positive(), rho: z.number().positive(), guidance: z.number().positive(), nfe: z.number().int().positive() }).strict(),
    z.object({ solver: z.literal('ddim'), numSteps: z.number().int().positive(), guidance: z.number().positive(), nfe: z.number().int().positive() }).strict(),
  ]),
  /** the prompts of a text-conditioned teacher: `label` indexes them */
  prompts: z.object({ file: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), count: z.number().int().positive() }).optional(),
  seed: z.number().int().min(0),
  count: z.number().int().positive(),
  shardSize: z.number().int().positive(),
  labels: z.enum(['balanced', 'random']),
  imageShape: z.array(z.number().int().positive()).length(3),
  labelDim: z.number().int().min(0),
  shards: z.array(z.object({ file: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'a plain file name'), start: z.number().int().min(0), count: z.number().int().positive(), complete: z.boolean() })).min(1),
});
export type PairsManifest = z.infer<typeof PairsManifestSchema>;

/** How many conditions `label` indexes: classes, prompts, or 0 (unconditional). */
export function conditionCount(m: Pick<PairsManifest, 'labelDim' | 'prompts'>): number {
  return m.prompts?.count ?? m.labelDim;
}

export class PairsError extends Error {
  readonly code = 'ERR_PAIRS';
}

export function readPairsManifest(dir: string): PairsManifest {
  return readShardedManifest(dir, PairsManifestSchema, { name: 'pairs.json', what: 'pairs', items: 'pairs', command: 'dmd pairs', error: PairsError });
}

