// PNG encode/decode over fast-png: 8- and 16-bit gray, gray+alpha, RGB, RGBA and palette images
// (interlaced too) become gray or RGB uint8 HWC pixels (alpha dropped, palettes expanded, 16-bit
// samples reduced to their high byte, low-bit gray scaled to 0..255); grids are written as 8-bit
// gray or RGB. Errors name the file.
import { decode, encode, convertIndexedToRgb, type DecodedPng } from 'fast-png';

export class PNGError extends Error {
  readonly code = 'ERR_PNG';
}

export interface Image {
  width: number;
  height: number;
  /** 1 (gray) or 3 (RGB); alpha is dropped, palettes expanded */
  channels: 1 | 3;
  /** HWC uint8 */
  data: Uint8Array;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Encodes an 8-bit gray or RGB image (HWC uint8). */
export function encodePNG(img: Image): Buffer {
  const { width, height, channels, data } = img;
  if (data.length !== width * height * channels) throw new PNGError(`encodePNG: ${data.length} bytes for ${width}x${height}x${channels}`);
  const png = encode({ width, height, data, channels, depth: 8 });
  return Buffer.from(png.buffer, png.byteOffset, png.byteLength);
}

/** Decodes a PNG into gray or RGB HWC uint8. */
export function decodePNG(buf: Uint8Array, name = 'image'): Image {
  if (buf.length < 8 || SIGNATURE.some((v, i) => buf[i] !== v)) throw new PNGError(`${name}: not a PNG file`);
  let png: DecodedPng;
  try {
    png = decode(buf, { checkCrc: true });
  } catch (e) {
    throw new PNGError(`${name}: corrupt or unsupported PNG (${e instanceof Error ? e.message : String(e)})`);
  }
  const { width, height, depth } = png;
  if (!width || !height) throw new PNGError(`${name}: empty image`);
  if (width * height > 1 << 26) throw new PNGError(`${name}: ${width}x${height} is too large`);
  let src: ArrayLike<number> = png.data;
  let inCh = png.channels;
  let scale = (v: number) => v;
  if (png.palette) {
    try {
      src = convertIndexedToRgb(png);
    } catch (e) {
      throw new PNGError(`${name}: bad palette (${e instanceof Error ? e.message : String(e)})`);
    }
    inCh = src.length / (width * height);
  } else if (depth === 16) {
    scale = (v) => v >> 8;
  } else if (depth < 8) {
    const max = (1 << depth) - 1;
    scale = (v) => Math.round((v * 255) / max);
  }
  if (src.length < width * height * inCh) throw new PNGError(`${name}: image data is truncated`);
  const channels: 1 | 3 = inCh <= 2 ? 1 : 3;
  const data = new Uint8Array(width * height * channels);
  for (let p = 0, o = 0, i = 0; p < width * height; p++, i += inCh) for (let c = 0; c < channels; c++) data[o++] = scale(src[i + c]!);
  return { width, height, channels, data };
}
