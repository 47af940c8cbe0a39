// Named network configurations. The Fashion-MNIST ones are dmd-torch's; the CIFAR-10 and ImageNet-64
// ones are EDM's published configurations (EDM train.py: ddpmpp for CIFAR-10, adm for ImageNet-64).
import type { EDMConfigInput } from './config.js';

export const PRESETS = {
  /** Class-conditional Fashion-MNIST 32x32 DDPM++ (~7M parameters), the GPU default teacher. */
  fmnist: {
    model_type: 'SongUNet', img_resolution: 32, img_channels: 1, label_dim: 10, model_channels: 64, channel_mult: [1, 2, 2],
    num_blocks: 2, attn_resolutions: [16], dropout: 0.1, label_dropout: 0.1,
  },
  /** A small Fashion-MNIST DDPM++ that trains on a laptop CPU (the bundled teacher). */
  'fmnist-small': {
    model_type: 'SongUNet', img_resolution: 32, img_channels: 1, label_dim: 10, model_channels: 32, channel_mult: [1, 2, 2],
    num_blocks: 1, attn_resolutions: [8], dropout: 0.1, label_dropout: 0.1,
  },
  /** EDM's class-conditional CIFAR-10 DDPM++ (56M parameters). */
  'cifar10-ddpmpp': {
    model_type: 'SongUNet', img_resolution: 32, img_channels: 3, label_dim: 10, augment_dim: 9, model_channels: 128, channel_mult: [2, 2, 2],
    num_blocks: 4, attn_resolutions: [16], dropout: 0.13, embedding_type: 'positional', encoder_type: 'standard', decoder_type: 'standard',
    channel_mult_noise: 1, resample_filter: [1, 1],
  },
  /** EDM's class-conditional CIFAR-10 NCSN++. */
  'cifar10-ncsnpp': {
    model_type: 'SongUNet', img_resolution: 32, img_channels: 3, label_dim: 10, augment_dim: 9, model_channels: 128, channel_mult: [2, 2, 2],
    num_blocks: 4, attn_resolutions: [16], dropout: 0.13, embedding_type: 'fourier', encoder_type: 'residual', decoder_type: 'standard',
    channel_mult_noise: 2, resample_filter: [1, 3, 3, 1],
  },
  /** EDM's class-conditional ImageNet-64 ADM (296M parameters). */
  'imagenet64-adm': {
    model_type: 'DhariwalUNet', img_resolution: 64, img_channels: 3, label_dim: 1000, model_channels: 192, channel_mult: [1, 2, 3, 4],
    num_blocks: 3, attn_resolutions: [32, 16, 8], dropout: 0.1,
  },
} satisfies Record<string, EDMConfigInput>;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

export function preset(name: string): EDMConfigInput {
  const p = (PRESETS as Record<string, EDMConfigInput>)[name];
  if (!p) throw new RangeError(`unknown network preset '${name}' (known: ${PRESET_NAMES.join(', ')})`);
  return p;
}
