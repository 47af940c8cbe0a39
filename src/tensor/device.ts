// Devices: 'cpu', 'cuda' or 'cuda:N'.
import { cuda, visibleDevices } from './cuda.js';

export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

const DEVICE_RE = /^(cpu|cuda(:\d+)?)$/;

export function isDevice(x: unknown): x is Device {
  return typeof x === 'string' && DEVICE_RE.test(x);
}

export function checkDevice(x: unknown, what = 'device'): Device {
  if (!isDevice(x)) throw new TypeError(`${what} must be 'cpu', 'cuda' or 'cuda:N', got ${JSON.stringify(x)}`);
  return x;
}

export function isCuda(d: Device): boolean {
  return d.startsWith('cuda');
}

/**
 * The kernel settings of a training command: TF32 for float32 on CUDA, and deterministic kernels
 * (PyTorch's use_deterministic_algorithms + cuDNN deterministic, benchmark off) when asked for; without
 * it, libtorch's defaults (CUDA convolution and index backward kernels may then vary in the last bits
 * between identical runs; CPU runs repeat exactly either way).
 */
export function configureKernels(device: Device, o: { tf32: boolean; deterministic: boolean }): void {
  cuda.setDeterminism({ algorithms: o.deterministic, warnOnly: false, cudnnDeterministic: o.deterministic, ...(o.deterministic ? { cudnnBenchmark: false } : {}) });
  if (isCuda(device)) cuda.setAllowTF32({ matmul: o.tf32, cudnn: o.tf32 });
}

/** The precision a network runs in (its weights stay float32 "master" weights when trained). */
export type ExecutionDType = 'float32' | 'float16' | 'bfloat16';

/** float16 kernels (convolutions, GroupNorm) exist on CUDA only: refuse it on the CPU up front. */
export function checkExecutionDType(device: Device, dtype: ExecutionDType): void {
  if (dtype === 'float16' && !isCuda(device))
    throw new RangeError(`--dtype float16 needs CUDA (libtorch has no float16 convolutions on the CPU); use --dtype float32 or bfloat16 on ${device}`);
}

/**
 * A device setting ('cpu', 'cuda', 'cuda:N' or 'auto' = CUDA when available) checked against this
 * machine: a CUDA device that cannot be used is one line saying why. 'auto' on a CUDA build that sees no
 * device runs on the CPU with a warning (on a CPU build it is the CPU without one).
 */
export function resolveDevice(d: string, warn: (message: string) => void = (m) => process.stderr.write(`warning: ${m}\n`)): Device {
  if (d === 'auto') {
    const why = cuda.unavailableReason();
    if (why === null) return 'cuda';
    if (cuda.builtWithCuda()) warn(`--device auto: ${why}; running on the CPU`);
    return 'cpu';
  }
  if (!isDevice(d)) throw new Error(`--device must be cpu, cuda, cuda:N or auto, got '${d}'`);
  if (d === 'cpu') return d;
  const why = cuda.unavailableReason();
  if (why !== null) throw new Error(`--device ${d}: ${why}; use --device cpu (or --device auto)`);
  const index = d === 'cuda' ? 0 : Number(d.slice(5));
  const count = cuda.deviceCount();
  if (index >= count) throw new Error(`--device ${d}: there ${count === 1 ? 'is 1 CUDA device' : `are ${count} CUDA devices`} (cuda:0..cuda:${count - 1}; ${visibleDevices()})`);
  return d;
}
