// Stable Diffusion v1 configurations, named as CompVis's LDM configs name them (v1-inference.yaml:
// model.params.unet_config.params, first_stage_config.params, the DDPM schedule), with SD v1.x's
// values as defaults; and the text encoder's (openai CLIP names). The zod schemas are the single
// source of defaults and checks.
import { z } from 'zod';
import { formatZodError } from '../util/zod.js';

const positive = z.number().int().positive();

export const SDUNetConfigSchema = z
  .object({
    image_size: positive.default(32).describe('latent size the model was trained at (informational; any multiple of the downsampling works)'),
    in_channels: positive.default(4),
    out_channels: positive.default(4),
    model_channels: positive.default(320),
    attention_resolutions: z.array(positive).default([4, 2, 1]),
    num_res_blocks: positive.default(2),
    channel_mult: z.array(positive).min(1).default([1, 2, 4, 4]),
    num_heads: z.number().int().default(8),
    num_head_channels: z.number().int().default(-1),
    use_spatial_transformer: z.literal(true).default(true),
    transformer_depth: positive.default(1),
    context_dim: positive.default(768),
    use_checkpoint: z.boolean().default(false),
    legacy: z.boolean().default(false),
    dims: z.literal(2).optional(),
    dropout: z.number().min(0).max(1).default(0),
    conv_resample: z.literal(true).optional(),
    use_scale_shift_norm: z.literal(false).optional(),
    resblock_updown: z.literal(false).optional(),
    use_fp16: z.boolean().optional(),
    num_heads_upsample: z.number().int().optional(),
  })
  .strict();
export type SDUNetConfig = z.infer<typeof SDUNetConfigSchema>;

export const SDVAEConfigSchema = z
  .object({
    ddconfig: z
      .object({
        double_z: z.literal(true).default(true),
        z_channels: positive.default(4),
        resolution: positive.default(256),
        in_channels: positive.default(3),
        out_ch: positive.default(3),
        ch: positive.default(128),
        ch_mult: z.array(positive).min(1).default([1, 2, 4, 4]),
        num_res_blocks: positive.default(2),
        attn_resolutions: z.array(positive).default([]),
        dropout: z.number().min(0).max(1).default(0),
      })
      .strict()
      .prefault({}),
    embed_dim: positive.default(4),
    /** SD v1's latent scale: latents = scale_factor * VAE mean */
    scale_factor: z.number().positive().default(0.18215),
  })
  .strict();
export type SDVAEConfig = z.infer<typeof SDVAEConfigSchema>;

export const CLIPTextConfigSchema = z
  .object({
    vocab_size: positive.default(49408),
    context_length: positive.default(77),
    width: positive.default(768),
    heads: positive.default(12),
    layers: positive.default(12),
  })
  .strict();
export type CLIPTextConfig = z.infer<typeof CLIPTextConfigSchema>;

/** The DDPM forward process SD v1 was trained with ("scaled_linear" betas, eps prediction). */
export const SDScheduleSchema = z
  .object({
    linear_start: z.number().positive().default(0.00085),
    linear_end: z.number().positive().default(0.012),
    timesteps: positive.default(1000),
  })
  .strict();
export type SDSchedule = z.infer<typeof SDScheduleSchema>;

export const StableDiffusionConfigSchema = z
  .object({
    unet: SDUNetConfigSchema.prefault({}),
    vae: SDVAEConfigSchema.prefault({}),
    text: CLIPTextConfigSchema.prefault({}),
    schedule: SDScheduleSchema.prefault({}),
  })
  .strict();
export type StableDiffusionConfig = z.infer<typeof StableDiffusionConfigSchema>;
export type StableDiffusionConfigInput = z.input<typeof StableDiffusionConfigSchema>;

export class SDConfigError extends Error {
  readonly code = 'ERR_SD_CONFIG';
}

function parse<T extends z.ZodType>(schema: T, input: unknown, what: string): z.infer<T> {
  const r = schema.safeParse(input);
  if (!r.success) throw new SDConfigError(`${what}: ${formatZodError(r.error)}`);
  return r.data;
}

/** Validates a UNet config; heads: exactly one of num_heads and num_head_channels (ldm's rule, -1 for the other). */
export function parseUNetConfig(input: unknown, what = 'SD UNet config'): SDUNetConfig {
  const c = parse(SDUNetConfigSchema, input, what);
  if ((c.num_heads > 0) === (c.num_head_channels > 0)) throw new SDConfigError(`${what}: give exactly one of num_heads and num_head_channels (the other -1)`);
  if (c.legacy && c.num_head_channels > 0) throw new SDConfigError(`${what}: legacy: true with num_head_channels is not an SD v1 layout`);
  return c;
}

export function parseVAEConfig(input: unknown, what = 'SD VAE config'): SDVAEConfig {
  return parse(SDVAEConfigSchema, input, what);
}

export function parseCLIPTextConfig(input: unknown, what = 'CLIP text config'): CLIPTextConfig {
  return parse(CLIPTextConfigSchema, input, what);
}

export function parseStableDiffusionConfig(input: unknown, what = 'Stable Diffusion config'): StableDiffusionConfig {
  const c = parse(StableDiffusionConfigSchema, input ?? {}, what);
  parseUNetConfig(c.unet, `${what}: unet`);
  if (c.unet.context_dim !== c.text.width) throw new SDConfigError(`${what}: the UNet's context_dim ${c.unet.context_dim} differs from the text encoder's width ${c.text.width}`);
  if (c.unet.in_channels !== c.vae.embed_dim) throw new SDConfigError(`${what}: the UNet takes ${c.unet.in_channels} channels but the VAE's latents have ${c.vae.embed_dim}`);
  return c;
}

/** The latent downsampling of the VAE: 2^(levels - 1) (8 for SD v1). */
export function vaeFactor(c: SDVAEConfig): number {
  return 2 ** (c.ddconfig.ch_mult.length - 1);
}
