// A check before the first step that a run fits in memory: on the CPU, Linux overcommits and a batch
// far too large is not an allocation error but minutes of swapping or the OOM killer; on a GPU, an
// out-of-memory error after minutes of loading. The estimate is what the run keeps (weights, gradients,
// optimiser moments: fixed) plus what each sample of the batch costs (activations kept for backward).
import { totalmem, freemem } from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import { type Device, isCuda } from '../tensor/device.js';
import { cuda } from '../tensor/cuda.js';
import { RunError } from './errors.js';

const GiB = 2 ** 30;
const cudaIndex = (device: Device) => (device === 'cuda' ? 0 : Number(device.slice(5)));
const gib = (b: number) => (b >= GiB / 2 ? `${(b / GiB).toFixed(1)} GiB` : `${Math.max(1, Math.round(b / 2 ** 20))} MiB`);

export interface MemoryEstimate {
  /** bytes independent of the batch: weights, gradients, optimiser moments, frozen networks */
  fixedBytes: number;
  /** bytes per sample of the batch (activations) */
  perSampleBytes: number;
}

/** The estimate for a batch, in words: "12.3 GiB (weights, gradients and AdamW moments 10.0 GiB + activations 2.3 GiB at batch 8)". */
export function describeMemory(e: MemoryEstimate, batch: number): string {
  const parts = [...(e.fixedBytes ? [`weights, gradients and AdamW moments ${gib(e.fixedBytes)}`] : []), `activations ${gib(batch * e.perSampleBytes)} at batch ${batch}`];
  return `${gib(e.fixedBytes + batch * e.perSampleBytes)} (${parts.join(' + ')})`;
}

/** The memory of a device: a GPU's total as its driver reports it, the machine's on the CPU. */
function deviceMemory(device: Device): { total: number; free: number; name: string } {
  if (!isCuda(device)) return { total: totalmem(), free: freemem(), name: "this machine's memory" };
  const m = cuda.memoryInfo(cudaIndex(device));
  return { ...m, name: `${device}'s memory` };
}

/**
 * Throws when the estimate for the batch exceeds the device's memory, naming the batch that fits (or,
 * when not even one sample fits, what it would need and `hint`); returns a warning when it exceeds what
 * is free now, else null.
 */
export function checkMemory(e: MemoryEstimate, batch: number, device: Device, hint = ''): string | null {
  const mem = deviceMemory(device);
  if (!mem.total) return null;
  const need = e.fixedBytes + batch * e.perSampleBytes;
  if (need > mem.total) {
    const fits = Math.floor((0.9 * mem.total - e.fixedBytes) / e.perSampleBytes);
    const advice = fits >= 1
      ? `lower --batch-size (${fits} fits by the estimate)`
      : e.fixedBytes >= 0.9 * mem.total
        ? `not even batch 1 fits: the weights, gradients and AdamW moments alone need ${gib(e.fixedBytes)} (every process holds them all); use a device with more memory`
        : `not even batch 1 fits (it needs ${gib(e.fixedBytes + e.perSampleBytes)})${hint ? `: ${hint}` : ''}`;
    throw new RunError(`--batch-size ${batch} needs an estimated ${describeMemory(e, batch)}, more than ${mem.name} (${gib(mem.total)}); ${advice}`);
  }
  if (need > mem.free) return `--batch-size ${batch} needs an estimated ${gib(need)}, more than the ${gib(mem.free)} free now${isCuda(device) ? ' (other processes hold the rest)' : '; expect swapping'}`;
  return null;
}

/** checkMemory for activations alone (teacher training, EDM distillation). */
export function checkBatchMemory(batch: number, bytesPerImage: number, device: Device): string | null {
  if (isCuda(device)) return null;
  return checkMemory({ fixedBytes: 0, perSampleBytes: bytesPerImage }, batch, device);
}

/**
 * Starts measuring the peak anew (after loading, whose file buffers are not the run's): the caching
 * allocator's peak on CUDA, the peak resident set on Linux (/proc/self/clear_refs). Returns the memory
 * in use now (tensors on CUDA, the resident set on the CPU), or null where it cannot be measured.
 */
export function resetPeakMemory(device: Device): number | null {
  if (isCuda(device)) {
    cuda.resetPeakMemoryStats(cudaIndex(device));
    return cuda.memoryStats(cudaIndex(device)).allocated;
  }
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return process.memoryUsage().rss;
  } catch {
    return null;
  }
}

/**
 * The peak memory since resetPeakMemory: on CUDA the peak of allocated tensors on the device, on the
 * CPU the peak resident set (VmHWM, which also counts the program and libtorch themselves, a few
 * hundred MiB). Null where it cannot be read.
 */
export function peakMemory(device: Device): { bytes: number; what: string } | null {
  if (isCuda(device)) return { bytes: cuda.memoryStats(cudaIndex(device)).peakAllocated, what: `peak of tensors on ${device}` };
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? { bytes: Number(m[1]) * 1024, what: 'peak resident memory of this process' } : null;
  } catch {
    return null;
  }
}

export { gib as formatBytes };

/**
 * The peak memory of a run's iterations, leaving out what the sample grids cost (decoding images can
 * need more than a training step, and is not what a batch size is chosen for): the peak is read before
 * each grid and measured anew after it.
 */
export class PeakTracker {
  /** memory in use when tracking began (null where it cannot be measured) */
  readonly atStart: number | null;
  private max = 0;

  constructor(private readonly device: Device) {
    this.atStart = resetPeakMemory(device);
  }

  /** Runs fn (a sample grid) outside the measurement. */
  aside<T>(fn: () => T): T {
    this.max = Math.max(this.max, peakMemory(this.device)?.bytes ?? 0);
    try {
      return fn();
    } finally {
      resetPeakMemory(this.device);
    }
  }

  /** The peak of the iterations so far, or null where it cannot be measured. */
  peak(): { bytes: number; what: string } | null {
    const p = this.atStart === null ? null : peakMemory(this.device);
    return p && { ...p, bytes: Math.max(this.max, p.bytes) };
  }
}
