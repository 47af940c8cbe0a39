// Stable Diffusion v1's latent UNet as a native module (native/sd_unet.cc): eps = UNet(x_t, t, context),
// with the middle block's output on request. One forward is one native call.
import { N } from '../native.js';
import { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { manualSeed } from '../tensor/random.js';
import { dtypeCode } from '../tensor/dtype.js';
import type { Device, ExecutionDType } from '../tensor/device.js';
import { parseUNetConfig, type SDUNetConfig } from './config.js';

export interface UNetForwardOptions {
  /** execution precision of the network (weights stay as they are; output float32) */
  dtype?: ExecutionDType;
}

export class SDUNet extends Module {
  private constructor(handle: ReturnType<typeof N.sdUnetCreate>, readonly config: SDUNetConfig) {
    super(handle);
  }

  /**
   * A freshly initialised UNet (PyTorch's default init, ldm's zero-initialised output convolutions);
   * `init: false` leaves the weights uninitialised, for weights about to be loaded.
   */
  static create(config: Partial<SDUNetConfig> | SDUNetConfig, o: { device?: Device; seed?: number; init?: boolean } = {}): SDUNet {
    const c = parseUNetConfig(config);
    if (o.seed !== undefined) manualSeed(o.seed);
    const net = new SDUNet(N.sdUnetCreate({ ...(c as unknown as Record<string, unknown>), init: o.init ?? true }), c);
    if (o.device && o.device !== 'cpu') net.to({ device: o.device });
    return net;
  }

  /** The noise prediction eps [B, out_channels, H, W] (float32); timesteps int64 [B] or [1]; context [B, L, context_dim]. */
  forward(x: Tensor, timesteps: Tensor, context: Tensor, o: UNetForwardOptions = {}): Tensor {
    return new Tensor(N.sdUnetForward(this.handle, x.handle, timesteps.handle, context.handle, { dtype: dtypeCode(o.dtype ?? 'float32'), output: 'eps' }) as never);
  }

  /** The middle block's output [B, midChannels, H/d, W/d] (float32) without running the decoder (DMD2's GAN classifier input). */
  middle(x: Tensor, timesteps: Tensor, context: Tensor, o: UNetForwardOptions = {}): Tensor {
    return new Tensor(N.sdUnetForward(this.handle, x.handle, timesteps.handle, context.handle, { dtype: dtypeCode(o.dtype ?? 'float32'), output: 'mid' }) as never);
  }

  /** eps and the middle block's output from one forward. */
  forwardWithMiddle(x: Tensor, timesteps: Tensor, context: Tensor, o: UNetForwardOptions = {}): { eps: Tensor; mid: Tensor } {
    const [eps, mid] = N.sdUnetForward(this.handle, x.handle, timesteps.handle, context.handle, { dtype: dtypeCode(o.dtype ?? 'float32'), output: 'both' }) as never as [never, never];
    return { eps: new Tensor(eps), mid: new Tensor(mid) };
  }

  /** Channels of the middle block and the latent's downsampling to it. */
  middleShape(): { channels: number; downsample: number } {
    const i = N.sdUnetInfo(this.handle);
    return { channels: i.midChannels, downsample: i.downsample };
  }

  /** Activation checkpointing of every block whenever gradients are recorded, in training or eval mode (activations recomputed in backward). */
  setCheckpointing(on: boolean): this {
    N.sdUnetSetCheckpoint(this.handle, on);
    return this;
  }

  /** A new UNet with the same config and a copy of the weights, on the same device and in the same mode. */
  clone(): SDUNet {
    const copy = SDUNet.create(this.config, { init: false });
    const dev = this.parameters()[0]!.device;
    if (dev !== 'cpu') copy.to({ device: dev });
    copy.copyFrom(this);
    copy.train(this.training);
    return copy;
  }
}
