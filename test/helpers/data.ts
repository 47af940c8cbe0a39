// A tiny labelled image folder (10 classes x 2 PNGs of 28x28 gray gradients) for tests that need
// real images, e.g. the GAN option of the DMD trainer.
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { encodePNG } from '../../src/data/png.js';

export function pngClassFolder(dir: string): string {
  const d = path.join(dir, 'real');
  if (existsSync(d)) return d;
  for (let c = 0; c < 10; c++) {
    mkdirSync(path.join(d, String(c)), { recursive: true });
    for (let i = 0; i < 2; i++) {
      const v = c * 20 + i;
      const px = new Uint8Array(28 * 28);
      for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) px[y * 28 + x] = (v + x + y) % 256;
      writeFileSync(path.join(d, String(c), `${i}.png`), encodePNG({ width: 28, height: 28, channels: 1, data: px }));
    }
  }
  return d;
}
