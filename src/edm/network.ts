// EDMNetwork: an EDMPrecond-wrapped UNet (DDPM++/NCSN++/ADM) as a native module. One forward is one
// native call: D(x; sigma, labels) in float32, the inner UNet in float32, float16 or bfloat16.
import { N } from '../native.js';
import { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { full } from '../tensor/create.js';
import { manualSeed } from '../tensor/random.js';
import { type Device, type ExecutionDType, isCuda } from '../tensor/device.js';
import { dtypeCode } from '../tensor/dtype.js';
import { type EDMConfig, type EDMConfigInput, parseEDMConfig } from './config.js';

export { type ExecutionDType, checkExecutionDType } from '../tensor/device.js';

/**
 * A rough, deliberately high estimate of the memory one image costs while training: the UNet's feature
 * maps (channels x resolution^2 per block and level) times `passes`, the number of such activation
 * sets alive at once (a DMD iteration keeps about 24: generator and fake-score forward/backward; EDM
 * training about 8). Calibrated on a 2-core CPU: a DMD iteration measured 19 MiB/image for the
 * fmnist-small preset and 47 MiB/image for fmnist, where this gives 21 and 60 MiB.
 */
export function trainingBytesPerImage(c: EDMConfig, passes: number, dtype: ExecutionDType = 'float32'): number {
  const levels = c.channel_mult.length;
  let elements = 0;
  for (let l = 0; l < levels; l++) {
    const res = c.img_resolution >> l;
    const blocks = 2 * c.num_blocks + 2 + (l === levels - 1 ? 2 : 0);
    elements += c.model_channels * c.channel_mult[l]! * res * res * blocks;
  }
  return elements * passes * (dtype === 'float32' ? 4 : 2);
}

export interface ForwardOptions {
  /** One-hot class labels [N, label_dim]; omitted for unconditional networks (zeros for conditional ones, as EDM). */
  labels?: Tensor | null;
  /** Augmentation labels [N, augment_dim] (EDM's non-leaky augmentation conditioning). */
  augmentLabels?: Tensor | null;
  /** Inner network precision; default float16 when config.use_fp16 on CUDA (EDM's rule), else float32. */
  dtype?: ExecutionDType;
}

export interface CreateOptions {
  device?: Device;
  /** Seeds libtorch's default generator before EDM's random initialisation. */
  seed?: number;
}

export class EDMNetwork extends Module {
  readonly config: EDMConfig;

  private constructor(handle: ReturnType<typeof N.edmCreate>, config: EDMConfig) {
    super(handle);
    this.config = config;
  }

  /** A freshly initialised network (EDM's weight init). */
  static create(config: EDMConfigInput | EDMConfig, o: CreateOptions = {}): EDMNetwork {
    const c = parseEDMConfig(config);
    if (o.seed !== undefined) manualSeed(o.seed);
    const net = new EDMNetwork(N.edmCreate(c as unknown as Record<string, unknown>), c);
    if (o.device && o.device !== 'cpu') net.to({ device: o.device });
    return net;
  }

  get labelDim(): number { return this.config.label_dim; }
  get imgChannels(): number { return this.config.img_channels; }
  get imgResolution(): number { return this.config.img_resolution; }
  get sigmaData(): number { return this.config.sigma_data; }
  /** The device of the parameters. */
  get device(): Device { return this.parameters()[0]!.device; }

  private defaultDType(): ExecutionDType {
    return this.config.use_fp16 && isCuda(this.device) ? 'float16' : 'float32';
  }

  private sigmaTensor(x: Tensor, sigma: Tensor | number): Tensor {
    return sigma instanceof Tensor ? sigma : full([1], sigma, { device: x.device });
  }

  /** The denoiser D(x; sigma): x [N, C, H, W], sigma a number or [N] / [N,1,1,1]. Returns float32. */
  forward(x: Tensor, sigma: Tensor | number, o: ForwardOptions = {}): Tensor {
    return this.call(x, sigma, o, false);
  }

  /** The encoder output for the same conditioning (the input of DMD2's GAN classifier head), float32. */
  bottleneck(x: Tensor, sigma: Tensor | number, o: ForwardOptions = {}): Tensor {
    return this.call(x, sigma, o, true);
  }

  private call(x: Tensor, sigma: Tensor | number, o: ForwardOptions, returnBottleneck: boolean): Tensor {
    const s = this.sigmaTensor(x, sigma);
    try {
      return new Tensor(
        N.edmForward(this.handle, x.handle, s.handle, this.labelsHandle(o.labels), o.augmentLabels?.handle, {
          dtype: dtypeCode(o.dtype ?? this.defaultDType()),
          returnBottleneck,
        }),
      );
    } finally {
      if (s !== sigma) s.dispose();
    }
  }

  /** Channels and spatial size of the bottleneck (the encoder output), as the native network reports them. */
  bottleneckShape(): { channels: number; resolution: number } {
    return N.edmBottleneckShape(this.handle);
  }

  private labelsHandle(labels: Tensor | null | undefined) {
    if (!labels) return null;
    if (this.config.label_dim === 0) {
      if (labels.numel === 0) return null;
      throw new TypeError('this network is unconditional (label_dim 0) but class labels were given');
    }
    return labels.handle;
  }

  /** A new network with the same config and a copy of the weights, on the same device. */
  clone(): EDMNetwork {
    const copy = EDMNetwork.create(this.config);
    const dev = this.device;
    if (dev !== 'cpu') copy.to({ device: dev });
    copy.copyFrom(this);
    copy.train(this.training);
    return copy;
  }
}
