// JPEG decoding (baseline and progressive, over jpeg-js) into gray or RGB HWC uint8: one-component
// JPEGs stay gray, YCbCr/CMYK become RGB. Errors name the file.
import jpeg from 'jpeg-js';
import type { Image } from './png.js';

export class JPEGError extends Error {
  readonly code = 'ERR_JPEG';
}

export function isJPEG(buf: Uint8Array): boolean {
  return buf.length > 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff;
}

/** The number of colour components the frame header (SOFn) declares, or null when there is none. */
function frameComponents(buf: Uint8Array): number | null {
  let i = 2;
  while (i + 4 <= buf.length) {
    if (buf[i] !== 0xff) return null;
    const m = buf[i + 1]!;
    if (m === 0xff) { i += 1; continue; } // fill byte
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) { i += 2; continue; }
    const len = (buf[i + 2]! << 8) | buf[i + 3]!;
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return i + 9 < buf.length ? buf[i + 9]! : null;
    if (m === 0xda || m === 0xd9) return null; // scan before any frame header
    i += 2 + len;
  }
  return null;
}

export function decodeJPEG(buf: Uint8Array, file = 'JPEG'): Image {
  if (!isJPEG(buf)) throw new JPEGError(`${file}: not a JPEG file (bad signature)`);
  const comps = frameComponents(buf);
  if (comps === null) throw new JPEGError(`${file}: corrupt JPEG (no frame header)`);
  let rgb: { width: number; height: number; data: Uint8Array };
  try {
    rgb = jpeg.decode(buf, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false, maxMemoryUsageInMB: 2048 });
  } catch (e) {
    throw new JPEGError(`${file}: corrupt or unsupported JPEG (${e instanceof Error ? e.message : String(e)})`);
  }
  const { width, height, data } = rgb;
  if (comps !== 1) return { width, height, channels: 3, data };
  const gray = new Uint8Array(width * height);
  for (let p = 0; p < gray.length; p++) gray[p] = data[3 * p]!;
  return { width, height, channels: 1, data: gray };
}
