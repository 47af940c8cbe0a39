// A small random EDM teacher written to a temporary file (fast enough for CPU end-to-end tests).
import path from 'node:path';
import { EDMNetwork, saveEDM, type EDMConfigInput } from '../../src/index.js';

export const TINY_TEACHER: EDMConfigInput = {
  model_type: 'SongUNet', img_resolution: 32, img_channels: 1, label_dim: 10, model_channels: 8, channel_mult: [1, 2, 2],
  num_blocks: 1, attn_resolutions: [8], dropout: 0,
};

export function tinyTeacher(dir: string, name = 'teacher.safetensors', config: EDMConfigInput = TINY_TEACHER): string {
  const net = EDMNetwork.create(config, { seed: 0 });
  const file = path.join(dir, name);
  saveEDM(net, file);
  net.dispose();
  return file;
}
