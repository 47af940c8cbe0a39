// Batches of a dataset on a device: images in [-1, 1] NCHW float32 at the network resolution (padded
// or resized), one-hot labels, seeded shuffling per epoch; the position is checkpointable.
import { Tensor } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import { tidy } from '../tensor/scope.js';
import { randperm, Generator, deriveSeed } from '../tensor/random.js';
import type { Device } from '../tensor/device.js';
import { interpolate, pad, oneHot } from '../nn/functional.js';
import { type ImageSource, DatasetError } from './sources.js';

export interface LoaderOptions {
  batchSize: number;
  /** network resolution; images are padded (smaller by an even margin, value -1) or resized (bilinear, antialiased) */
  resolution?: number;
  /** network channels (1 or 3): gray images are repeated to RGB (with a notice); RGB to gray is an error */
  channels?: number;
  /** hears of conversions made to fit the network (e.g. gray images repeated to 3 channels) */
  notice?: (s: string) => void;
  device?: Device;
  seed?: number;
  shuffle?: boolean;
  /** number of classes of the network's one-hot labels (default: the dataset's; 0: labels are not used) */
  numClasses?: number;
}

export interface LoaderState {
  epoch: number;
  position: number;
}

export interface Batch {
  images: Tensor;
  labels: Tensor | null;
  /** dataset indices of the batch */
  indices: number[];
  /** the images' captions (captioned datasets), or null */
  captions: string[] | null;
}

/**
 * The order a dataset is read in: a seeded permutation per epoch (identity without shuffling), batches
 * taken in turn, the last partial batch of an epoch dropped. The position (epoch, offset) is what a
 * checkpoint keeps.
 */
export class EpochOrder {
  private epoch = 0;
  private position = 0;
  private order: Int32Array | null = null;

  constructor(readonly size: number, readonly batchSize: number, private readonly seed = 0, private readonly shuffle = true) {}

  state(): LoaderState {
    return { epoch: this.epoch, position: this.position };
  }

  loadState(s: LoaderState): void {
    this.epoch = s.epoch;
    this.position = s.position;
    this.order = null;
  }

  private permutation(): Int32Array {
    if (!this.order) {
      if (!this.shuffle) {
        this.order = Int32Array.from({ length: this.size }, (_, i) => i);
      } else {
        const g = Generator.create('cpu', deriveSeed(this.seed, this.epoch));
        const p = randperm(this.size, { generator: g, dtype: 'int32' });
        this.order = Int32Array.from(p.data() as Int32Array);
        p.dispose();
      }
    }
    return this.order;
  }

  /** The dataset indices of the next batch (epochs wrap). */
  next(): number[] {
    if (this.position + this.batchSize > this.size) {
      this.epoch += 1;
      this.position = 0;
      this.order = null;
    }
    const indices = Array.from(this.permutation().subarray(this.position, this.position + this.batchSize));
    this.position += this.batchSize;
    return indices;
  }
}

export class ImageLoader {
  readonly batchSize: number;
  readonly resolution: number;
  readonly channels: number;
  readonly numClasses: number;
  private readonly order: EpochOrder;

  constructor(readonly source: ImageSource, private readonly o: LoaderOptions) {
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new RangeError(`batch size must be a positive integer, got ${o.batchSize}`);
    if (source.size < o.batchSize) throw new DatasetError(`${source.name}: ${source.size} images, fewer than one batch of ${o.batchSize}`);
    this.batchSize = o.batchSize;
    this.resolution = o.resolution ?? source.height;
    this.channels = o.channels ?? source.channels;
    this.numClasses = o.numClasses ?? source.numClasses;
    if (source.channels === 3 && this.channels === 1)
      throw new DatasetError(`${source.name}: RGB images for a network of 1-channel (gray) images; no conversion is made: give gray images (e.g. fashion-mnist), or a 3-channel network`);
    if (source.channels === 1 && this.channels === 3) o.notice?.(`notice: ${source.name} holds gray images; each is repeated to the network's 3 channels`);
    if (this.channels !== 1 && this.channels !== 3) throw new DatasetError(`networks with ${this.channels} channels are not supported by the image loader`);
    if (source.labels && this.numClasses > 0 && this.numClasses < source.numClasses)
      throw new DatasetError(`${source.name}: has ${source.numClasses} classes but the network takes ${this.numClasses} (label_dim)`);
    this.order = new EpochOrder(source.size, o.batchSize, o.seed ?? 0, o.shuffle !== false);
  }

  get batchesPerEpoch(): number {
    return Math.floor(this.source.size / this.batchSize);
  }

  state(): LoaderState {
    return this.order.state();
  }

  loadState(s: LoaderState): void {
    this.order.loadState(s);
  }

  /** The next batch (epochs wrap; the last partial batch of an epoch is dropped). */
  next(): Batch {
    return this.batch(this.order.next());
  }

  /** A batch of specific dataset indices. */
  batch(indices: number[]): Batch {
    const s = this.source;
    const px = s.channels * s.height * s.width;
    const buf = new Uint8Array(indices.length * px);
    indices.forEach((idx, k) => buf.set(s.image(idx), k * px));
    const images = tidy(() => {
      let x = tensor(buf, { shape: [indices.length, s.channels, s.height, s.width] }).to('float32').div(127.5).sub(1);
      if (s.channels === 1 && this.channels === 3) x = x.repeat([1, 3, 1, 1]);
      x = this.fit(x);
      return this.o.device && this.o.device !== 'cpu' ? x.to(this.o.device) : x;
    });
    let labels: Tensor | null = null;
    if (s.labels && this.numClasses > 0) {
      labels = tidy(() => {
        const l = oneHot(tensor(Int32Array.from(indices.map((i) => s.labels![i]!)), { shape: [indices.length] }).long(), this.numClasses);
        return this.o.device && this.o.device !== 'cpu' ? l.to(this.o.device) : l;
      });
    }
    return { images, labels, indices, captions: s.captions ? indices.map((i) => s.captions![i]!) : null };
  }

  private fit(x: Tensor): Tensor {
    const { height: h, width: w } = this.source;
    const r = this.resolution;
    if (h === r && w === r) return x;
    const dh = r - h;
    const dw = r - w;
    if (dh >= 0 && dw >= 0 && dh % 2 === 0 && dw % 2 === 0) return pad(x, [dw / 2, dw / 2, dh / 2, dh / 2], 'constant', -1);
    return interpolate(x, { size: [r, r], mode: 'bilinear', alignCorners: false, antialias: true });
  }
}
