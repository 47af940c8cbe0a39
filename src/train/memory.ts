// A check before the first step that the batch fits in memory: on the CPU, Linux overcommits and a
// batch far too large is not an allocation error but minutes of swapping or the OOM killer. CUDA
// reports its own out-of-memory errors (turned into a message naming --batch-size by the run).
import { totalmem, freemem } from 'node:os';
import { type Device, isCuda } from '../tensor/device.js';
import { RunError } from './errors.js';

const GiB = 2 ** 30;

/** Throws when batch x bytesPerImage exceeds this machine's memory; returns a warning when it exceeds what is free. */
export function checkBatchMemory(batch: number, bytesPerImage: number, device: Device): string | null {
  if (isCuda(device)) return null;
  const need = batch * bytesPerImage;
  if (need > totalmem())
    throw new RunError(
      `--batch-size ${batch} needs about ${(need / GiB).toFixed(1)} GiB of memory for its activations, more than this machine's ${(totalmem() / GiB).toFixed(1)} GiB; ` +
        `lower --batch-size (about ${Math.max(1, Math.floor((0.5 * totalmem()) / bytesPerImage))} fits comfortably)`,
    );
  if (need > freemem()) return `--batch-size ${batch} needs about ${(need / GiB).toFixed(1)} GiB, more than the ${(freemem() / GiB).toFixed(1)} GiB free now; expect swapping`;
  return null;
}
