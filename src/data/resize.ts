// Fitting photos of any size to a square network resolution on the CPU, before they become tensors:
// the largest centred square is cut out and resampled with a triangle (bilinear) filter whose support
// widens with the reduction, so downscaling averages every source pixel (PIL's antialiased bilinear).
import type { Image } from './png.js';

/** Per output sample of one axis: the first source index (plus offset), the tap count and the normalised triangle weights. */
function weights(inSize: number, outSize: number, offset: number): { start: Int32Array; count: Int32Array; w: Float64Array; taps: number } {
  const scale = inSize / outSize;
  const support = Math.max(1, scale);
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const w = new Float64Array(outSize * taps);
  for (let o = 0; o < outSize; o++) {
    const centre = (o + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - support));
    const hi = Math.min(inSize, Math.ceil(centre + support));
    let sum = 0;
    for (let i = lo; i < hi; i++) {
      const v = Math.max(0, 1 - Math.abs((i + 0.5 - centre) / support));
      w[o * taps + i - lo] = v;
      sum += v;
    }
    for (let i = 0; i < hi - lo; i++) w[o * taps + i] = w[o * taps + i]! / (sum || 1);
    start[o] = lo + offset;
    count[o] = hi - lo;
  }
  return { start, count, w, taps };
}

/** The centred square of `img`, resized to size x size (HWC uint8; unchanged when already that size). */
export function centerCropResize(img: Image, size: number): Image {
  const { width, height, channels: c, data } = img;
  if (width === size && height === size) return img;
  const side = Math.min(width, height);
  const x0 = Math.floor((width - side) / 2);
  const y0 = Math.floor((height - side) / 2);
  const wx = weights(side, size, x0);
  const wy = weights(side, size, y0);
  // horizontal pass over the rows of the square, then vertical
  const tmp = new Float64Array(side * size * c);
  for (let y = 0; y < side; y++) {
    const row = (y0 + y) * width;
    for (let o = 0; o < size; o++) {
      for (let k = 0; k < c; k++) {
        let acc = 0;
        for (let i = 0; i < wx.count[o]!; i++) acc += wx.w[o * wx.taps + i]! * data[(row + wx.start[o]! + i) * c + k]!;
        tmp[(y * size + o) * c + k] = acc;
      }
    }
  }
  const out = new Uint8Array(size * size * c);
  for (let o = 0; o < size; o++) {
    const s = wy.start[o]! - y0;
    for (let x = 0; x < size; x++) {
      for (let k = 0; k < c; k++) {
        let acc = 0;
        for (let i = 0; i < wy.count[o]!; i++) acc += wy.w[o * wy.taps + i]! * tmp[((s + i) * size + x) * c + k]!;
        out[(o * size + x) * c + k] = Math.min(255, Math.max(0, Math.round(acc)));
      }
    }
  }
  return { width: size, height: size, channels: c, data: out };
}
