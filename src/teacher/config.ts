// The settings of `dmd teacher`: one schema for both teacher families, an EDM pixel-space teacher
// (class labels) and a latent text-to-image teacher of the Stable Diffusion family (captions). The
// EDM family's settings are its own schema (edm/teacher.ts); the text-to-image family adds the flags
// below, which train.ts checks are only given with --mode sd.
import { z } from 'zod';
import { EDMTeacherConfigSchema, teacherRunSettings } from '../edm/teacher.js';

export const TeacherConfigSchema = z.object({
  // the run settings first, then the family and its flags, then the EDM settings (the order of --help)
  ...teacherRunSettings,
  mode: z.enum(['edm', 'sd']).default('edm').describe('edm: an EDM pixel-space teacher (class labels); sd: a latent text-to-image teacher of the Stable Diffusion family (captions from --captions, latents of --vae)'),
  vae: z.string().min(1).optional().describe('--mode sd: the autoencoder of the latent space (dmd autoencoder)'),
  captions: z.string().min(1).optional().describe('--mode sd: the phrasings per class, JSON Lines with "text" and "class"'),
  captionDropout: z.number().min(0).max(1).default(0.1).describe('--mode sd: probability of the empty prompt instead of the caption (classifier-free guidance)'),
  trainTextEncoder: z.boolean().default(false).describe('--mode sd: train the CLIP text encoder with the UNet (same optimizer, EMA and gradient clipping) instead of keeping it frozen at its seeded initialisation'),
  sdConfig: z.record(z.string(), z.unknown()).optional().describe('--mode sd: UNet and text-encoder settings overriding the small defaults, {"unet": {...}, "text": {...}} (config file only)'),
  ...EDMTeacherConfigSchema.shape,
});
export type TeacherConfig = z.infer<typeof TeacherConfigSchema>;

/** The flags only the text-to-image family reads. */
export const SD_ONLY_FLAGS = ['vae', 'captions', 'trainTextEncoder', 'sdConfig'] as const;
