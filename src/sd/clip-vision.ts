// CLIP's image tower as a native module (native/clip_vision.cc): CLIP-normalised pixels
// [B, 3, S, S] -> the pooled class token [B, width]; the projection to the joint embedding space is the
// caller's (metrics/clip-score.ts).
import { N } from '../native.js';
import { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { manualSeed } from '../tensor/random.js';
import { dtypeCode } from '../tensor/dtype.js';
import type { Device, ExecutionDType } from '../tensor/device.js';

export interface CLIPVisionConfig {
  image_size: number;
  patch_size: number;
  width: number;
  heads: number;
  layers: number;
}

export class CLIPImageEncoder extends Module {
  private constructor(handle: ReturnType<typeof N.clipVisionCreate>, readonly config: CLIPVisionConfig) {
    super(handle);
  }

  /** A new encoder: openai CLIP's initialisation, or uninitialised weights (`init: false`) to be loaded. */
  static create(c: CLIPVisionConfig, o: { device?: Device; seed?: number; init?: boolean } = {}): CLIPImageEncoder {
    if (o.seed !== undefined) manualSeed(o.seed);
    const m = new CLIPImageEncoder(N.clipVisionCreate({ ...c, init: o.init ?? true }), { ...c });
    if (o.device && o.device !== 'cpu') m.to({ device: o.device });
    return m;
  }

  /** The pooled output [B, width] (float32) of CLIP-normalised pixels [B, 3, image_size, image_size]. */
  forward(pixels: Tensor, o: { dtype?: ExecutionDType } = {}): Tensor {
    return new Tensor(N.clipVisionForward(this.handle, pixels.handle, { dtype: dtypeCode(o.dtype ?? 'float32') }));
  }
}
