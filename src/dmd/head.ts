// DMD2's GAN classifier head on the fake score's encoder bottleneck (conv 4x4/2, GroupNorm, SiLU,
// conv to 1x1, GroupNorm, SiLU, conv 1x1), as a native module.
import { N } from '../native.js';
import { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { manualSeed } from '../tensor/random.js';

export class GanHead extends Module {
  constructor(readonly channels: number, readonly resolution: number, seed?: number) {
    if (seed !== undefined) manualSeed(seed);
    super(N.ganHeadCreate({ channels, resolution }));
  }
  /** realism logits [N] of bottleneck features [N, channels, resolution, resolution] */
  logits(features: Tensor): Tensor {
    return new Tensor(N.ganHeadForward(this.handle, features.handle));
  }
}
