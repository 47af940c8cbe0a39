// The CLIP text encoder of Stable Diffusion v1 as a native module (native/clip_text.cc): token ids
// [B, 77] -> the last hidden state [B, 77, width] that the UNet cross-attends to.
import { N } from '../native.js';
import { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { manualSeed } from '../tensor/random.js';
import { dtypeCode } from '../tensor/dtype.js';
import type { Device, ExecutionDType } from '../tensor/device.js';
import { parseCLIPTextConfig, type CLIPTextConfig } from './config.js';

export class CLIPTextEncoder extends Module {
  private constructor(handle: ReturnType<typeof N.clipTextCreate>, readonly config: CLIPTextConfig) {
    super(handle);
  }

  /** A freshly initialised encoder (openai CLIP's initialisation). */
  static create(config: Partial<CLIPTextConfig> | CLIPTextConfig, o: { device?: Device; seed?: number; init?: boolean } = {}): CLIPTextEncoder {
    const c = parseCLIPTextConfig(config);
    if (o.seed !== undefined) manualSeed(o.seed);
    const m = new CLIPTextEncoder(N.clipTextCreate({ ...(c as unknown as Record<string, unknown>), init: o.init ?? true }), c);
    if (o.device && o.device !== 'cpu') m.to({ device: o.device });
    return m;
  }

  /** Hidden states [B, L, width] (float32) of token ids int64 [B, L]. */
  forward(tokens: Tensor, o: { dtype?: ExecutionDType } = {}): Tensor {
    return new Tensor(N.clipTextForward(this.handle, tokens.handle, { dtype: dtypeCode(o.dtype ?? 'float32') }));
  }
}
