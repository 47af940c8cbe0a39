// PNG encode/decode (pure TS over node:zlib): 8- and 16-bit gray, gray+alpha, RGB, RGBA and
// palette images, non-interlaced. Enough for EDM-style datasets and sample grids.
import { deflateSync, inflateSync, crc32 as zcrc32 } from 'node:zlib';

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

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const crcTable = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32(buf: Uint8Array): number {
  if (typeof zcrc32 === 'function') return zcrc32(buf) >>> 0;
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = crcTable[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** Encodes an 8-bit gray or RGB image (HWC uint8). */
export function encodePNG(img: Image): Buffer {
  const { width, height, channels, data } = img;
  if (data.length !== width * height * channels) throw new PNGError(`encodePNG: ${data.length} bytes for ${width}x${height}x${channels}`);
  const stride = width * channels;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0;
    raw.set(data.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = channels === 1 ? 0 : 2;
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Decodes a PNG into gray or RGB HWC uint8 (16-bit samples keep their high byte). */
export function decodePNG(buf: Uint8Array, name = 'image'): Image {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 8 || !b.subarray(0, 8).equals(SIGNATURE)) throw new PNGError(`${name}: not a PNG file`);
  let pos = 8;
  let width = 0, height = 0, depth = 0, colorType = -1, interlace = 0;
  let palette: Uint8Array | null = null;
  const idat: Buffer[] = [];
  while (pos + 8 <= b.length) {
    const len = b.readUInt32BE(pos);
    const type = b.toString('latin1', pos + 4, pos + 8);
    if (pos + 12 + len > b.length) throw new PNGError(`${name}: truncated ${type} chunk`);
    const data = b.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      depth = data[8]!;
      colorType = data[9]!;
      interlace = data[12]!;
    } else if (type === 'PLTE') palette = data;
    else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    pos += 12 + len;
  }
  if (!width || !height) throw new PNGError(`${name}: missing IHDR`);
  if (width * height > 1 << 26) throw new PNGError(`${name}: ${width}x${height} is too large`);
  if (interlace) throw new PNGError(`${name}: interlaced PNGs are not supported (re-save without interlacing)`);
  const samples = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[colorType];
  if (!samples || !(depth === 8 || depth === 16 || (colorType === 3 && depth <= 8) || (colorType === 0 && depth < 8)))
    throw new PNGError(`${name}: unsupported PNG (color type ${colorType}, bit depth ${depth})`);
  if (!idat.length) throw new PNGError(`${name}: no image data`);
  let raw: Buffer;
  try {
    raw = inflateSync(Buffer.concat(idat));
  } catch (e) {
    throw new PNGError(`${name}: corrupt image data (${e instanceof Error ? e.message : String(e)})`);
  }
  const bitsPerPixel = samples * depth;
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  const bpp = Math.max(1, bitsPerPixel >> 3);
  if (raw.length < (stride + 1) * height) throw new PNGError(`${name}: image data is truncated`);
  const pix = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)]!;
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = pix.subarray(y * stride, (y + 1) * stride);
    const up = y ? pix.subarray((y - 1) * stride, y * stride) : null;
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? out[i - bpp]! : 0;
      const u = up ? up[i]! : 0;
      const c = up && i >= bpp ? up[i - bpp]! : 0;
      const x = src[i]!;
      out[i] = (f === 0 ? x : f === 1 ? x + a : f === 2 ? x + u : f === 3 ? x + ((a + u) >> 1) : f === 4 ? x + paeth(a, u, c) : NaN) & 0xff;
      if (f > 4) throw new PNGError(`${name}: bad filter type ${f}`);
    }
  }
  const channels: 1 | 3 = colorType === 0 || colorType === 4 ? 1 : 3;
  const data = new Uint8Array(width * height * channels);
  const sample = (row: number, idx: number): number => {
    if (depth === 8) return pix[row * stride + idx]!;
    if (depth === 16) return pix[row * stride + idx * 2]!;
    const perByte = 8 / depth;
    const byte = pix[row * stride + Math.floor(idx / perByte)]!;
    const shift = 8 - depth * ((idx % perByte) + 1);
    const v = (byte >> shift) & ((1 << depth) - 1);
    return colorType === 3 ? v : Math.round((v * 255) / ((1 << depth) - 1));
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * channels;
      if (colorType === 3) {
        const p = sample(y, x);
        if (!palette || p * 3 + 2 >= palette.length) throw new PNGError(`${name}: palette index out of range`);
        data[o] = palette[p * 3]!;
        data[o + 1] = palette[p * 3 + 1]!;
        data[o + 2] = palette[p * 3 + 2]!;
      } else {
        for (let c = 0; c < channels; c++) data[o + c] = sample(y, x * samples + c);
      }
    }
  }
  return { width, height, channels, data };
}
