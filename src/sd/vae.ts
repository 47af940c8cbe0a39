// Stable Diffusion v1's KL-f8 autoencoder as a native module (native/sd_vae.cc): images in [-1, 1] to
// the diagonal Gaussian posterior over latents (ldm's DiagonalGaussianDistribution) and latents back
// to images. SD's latents are scale_factor (0.18215) times the posterior's mean or sample.
import { N } from '../native.js';
import { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { manualSeed } from '../tensor/random.js';
import { dtypeCode } from '../tensor/dtype.js';
import type { Device, ExecutionDType } from '../tensor/device.js';
import { parseVAEConfig, type SDVAEConfig } from './config.js';

export interface Posterior {
  /** quant_conv(Encoder(x)): mean and log-variance concatenated on channels */
  moments: Tensor;
  mean: Tensor;
  /** clamped to [-30, 20] as ldm does */
  logvar: Tensor;
}

export class AutoencoderKL extends Module {
  private constructor(handle: ReturnType<typeof N.sdVaeCreate>, readonly config: SDVAEConfig) {
    super(handle);
  }

  static create(config: Partial<SDVAEConfig> | SDVAEConfig, o: { device?: Device; seed?: number; init?: boolean } = {}): AutoencoderKL {
    const c = parseVAEConfig(config);
    if (o.seed !== undefined) manualSeed(o.seed);
    const m = new AutoencoderKL(N.sdVaeCreate({ ...c.ddconfig, embed_dim: c.embed_dim, init: o.init ?? true }), c);
    if (o.device && o.device !== 'cpu') m.to({ device: o.device });
    return m;
  }

  /** The latent downsampling factor (8 for SD v1) and latent channels. */
  get downsample(): number { return N.sdVaeInfo(this.handle).downsample; }
  get latentChannels(): number { return this.config.embed_dim; }

  /** The posterior of images [B, 3, H, W] in [-1, 1]. */
  encode(images: Tensor, o: { dtype?: ExecutionDType } = {}): Posterior {
    return tidy(() => {
      const moments = new Tensor(N.sdVaeEncode(this.handle, images.handle, { dtype: dtypeCode(o.dtype ?? 'float32') }));
      const [mean, logvar] = moments.chunk(2, 1);
      return { moments, mean: mean!, logvar: logvar!.clamp(-30, 20) };
    });
  }

  /** A sample of the posterior: mean + exp(logvar / 2) * noise. */
  static sample(p: Posterior, noise: Tensor): Tensor {
    return tidy(() => p.mean.add(p.logvar.mul(0.5).exp().mul(noise)));
  }

  /** Images (float32, about [-1, 1]) of unscaled latents [B, embed_dim, h, w]. */
  decode(latents: Tensor, o: { dtype?: ExecutionDType } = {}): Tensor {
    return new Tensor(N.sdVaeDecode(this.handle, latents.handle, { dtype: dtypeCode(o.dtype ?? 'float32') }));
  }
}
