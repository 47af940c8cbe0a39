// Image grids: a batch in [-1, 1] NCHW to one PNG (rows of `cols` images), and single images.
import { atomicWrite } from '../util/fs.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Device } from '../tensor/device.js';
import { keep, tidy } from '../tensor/scope.js';
import { randn, Generator } from '../tensor/random.js';
import { cycledOneHot } from '../nn/functional.js';
import { encodePNG } from './png.js';

/** A batch of 8-bit images, NHWC (what crosses threads: no tensor involved). */
export interface ImagePixels {
  data: Uint8Array;
  n: number;
  channels: 1 | 3;
  height: number;
  width: number;
}

/** uint8 NHWC pixels of a [-1, 1] NCHW batch. */
export function imagePixels(images: Tensor): ImagePixels {
  const [n, c, h, w] = images.shape as [number, number, number, number];
  if (c !== 1 && c !== 3) throw new RangeError(`image grids need 1 or 3 channels, got ${c}`);
  const data = tidy(() => images.detach().to({ device: 'cpu', dtype: 'float32' }).add(1).mul(127.5).round().clamp(0, 255).to('uint8').permute([0, 2, 3, 1]).contiguous().data() as Uint8Array);
  return { data, n, channels: c, height: h, width: w };
}

/** Images [first, first + count) of a batch, as their own batch (a view of the same bytes). */
export function slicePixels(p: ImagePixels, first: number, count: number): ImagePixels {
  const size = p.height * p.width * p.channels;
  return { ...p, n: count, data: p.data.subarray(first * size, (first + count) * size) };
}

/** uint8 HWC pixels of images laid out as a grid of `cols` columns (default: about square). */
export function layoutGrid(p: ImagePixels, cols?: number): { data: Uint8Array; width: number; height: number; channels: 1 | 3 } {
  const { n, channels: c, height: h, width: w } = p;
  const u8 = p.data;
  const k = cols ?? Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / k);
  const W = k * w;
  const H = rows * h;
  const data = new Uint8Array(W * H * c);
  for (let i = 0; i < n; i++) {
    const gy = Math.floor(i / k) * h;
    const gx = (i % k) * w;
    for (let y = 0; y < h; y++) data.set(u8.subarray(((i * h + y) * w) * c, ((i * h + y) * w + w) * c), ((gy + y) * W + gx) * c);
  }
  return { data, width: W, height: H, channels: c };
}

/** uint8 HWC pixels of a [-1, 1] NCHW batch laid out as a grid. */
export function gridPixels(images: Tensor, cols?: number): { data: Uint8Array; width: number; height: number; channels: 1 | 3 } {
  return layoutGrid(imagePixels(images), cols);
}

export function saveGrid(images: Tensor, file: string, cols?: number): void {
  const g = gridPixels(images, cols);
  atomicWrite(file, encodePNG(g), 'image');
}

/** Saves each image of a batch as its own PNG (names from `name(i)`). */
export function saveImages(images: Tensor, name: (i: number) => string): void {
  const n = images.shape[0]!;
  for (let i = 0; i < n; i++) tidy(() => saveGrid(images.narrow(0, i, 1), name(i), 1));
}

/**
 * The fixed inputs of a run's sample grids: `count` standard-normal noises drawn on the CPU from their
 * own seeded generator (the same images on every device and after resume) and labels cycling through
 * the classes. Kept: the caller disposes them.
 */
export function gridInputs(o: { count: number; channels: number; resolution: number; classes: number; seed: number; device: Device }): { z: Tensor; labels: Tensor | null } {
  return tidy(() => {
    const g = Generator.create('cpu', o.seed);
    const z = randn([o.count, o.channels, o.resolution, o.resolution], { generator: g }).to(o.device);
    const labels = cycledOneHot(o.count, o.classes, o.device);
    return { z: keep(z), labels: labels ? keep(labels) : null };
  });
}
