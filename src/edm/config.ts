// The EDM network configuration: EDMPrecond's constructor arguments with the inner network's, exactly
// as EDM names them (NVlabs/edm training/networks.py). Defaults are EDM's, per model_type.
import { z } from 'zod';
import { formatZodError } from '../util/zod.js';

const int = (min = 0) => z.number().int().min(min);
const positive = int(1);

const precond = {
  img_resolution: positive,
  img_channels: positive,
  label_dim: int().default(0),
  augment_dim: int().default(0),
  use_fp16: z.boolean().default(false),
  sigma_min: z.number().min(0).default(0),
  /** null (or absent) means +infinity, as in EDM */
  sigma_max: z.number().positive().nullable().default(null),
  sigma_data: z.number().positive().default(0.5),
  channel_mult_emb: positive.default(4),
  dropout: z.number().min(0).max(1).default(0.1),
  label_dropout: z.number().min(0).max(1).default(0),
};

export const SongUNetConfigSchema = z
  .object({
    model_type: z.literal('SongUNet'),
    ...precond,
    model_channels: positive.default(128),
    channel_mult: z.array(positive).min(1).default([1, 2, 2, 2]),
    channel_mult_noise: positive.default(1),
    num_blocks: positive.default(4),
    attn_resolutions: z.array(positive).default([16]),
    embedding_type: z.enum(['positional', 'fourier']).default('positional'),
    encoder_type: z.enum(['standard', 'skip', 'residual']).default('standard'),
    decoder_type: z.enum(['standard', 'skip']).default('standard'),
    resample_filter: z.array(z.number()).min(1).default([1, 1]),
  })
  .strict();

export const DhariwalUNetConfigSchema = z
  .object({
    model_type: z.literal('DhariwalUNet'),
    ...precond,
    model_channels: positive.default(192),
    channel_mult: z.array(positive).min(1).default([1, 2, 3, 4]),
    num_blocks: positive.default(3),
    attn_resolutions: z.array(positive).default([32, 16, 8]),
  })
  .strict();

export const EDMConfigSchema = z.discriminatedUnion('model_type', [SongUNetConfigSchema, DhariwalUNetConfigSchema]);
export type EDMConfig = z.infer<typeof EDMConfigSchema>;
export type EDMConfigInput = z.input<typeof EDMConfigSchema>;

export class EDMConfigError extends Error {
  readonly code = 'ERR_EDM_CONFIG';
}

/** Validates an EDM config (object or JSON text); errors name the offending field. */
export function parseEDMConfig(input: unknown, source = 'EDM config'): EDMConfig {
  let value = input;
  if (typeof input === 'string') {
    try {
      // Python's json.dumps writes Infinity for EDM's default sigma_max
      value = JSON.parse(input.replace(/\bInfinity\b/g, 'null'));
    } catch (e) {
      throw new EDMConfigError(`${source}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new EDMConfigError(`${source}: must be a JSON object`);
  const mt = (value as Record<string, unknown>).model_type;
  if (mt === undefined) value = { ...value, model_type: 'DhariwalUNet' }; // EDMPrecond's default
  else if (mt !== 'SongUNet' && mt !== 'DhariwalUNet')
    throw new EDMConfigError(`${source}: unknown model_type ${JSON.stringify(mt)} (expected "SongUNet" or "DhariwalUNet")`);
  const r = EDMConfigSchema.safeParse(value);
  if (!r.success) throw new EDMConfigError(`${source}: ${formatZodError(r.error)}`);
  const c = r.data;
  const levels = c.channel_mult.length;
  if (c.img_resolution >> (levels - 1) < 1 || c.img_resolution % (1 << (levels - 1)) !== 0)
    throw new EDMConfigError(`${source}: img_resolution ${c.img_resolution} cannot be halved ${levels - 1} times (channel_mult has ${levels} levels)`);
  return c;
}

/** The JSON text stored in teacher files (sigma_max null = infinity). */
export function configJSON(c: EDMConfig): string {
  return JSON.stringify(c);
}
