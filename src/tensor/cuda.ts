// CUDA device queries and memory statistics.
import { N, type TF32Settings, type DeterminismSettings } from '../native.js';

export interface CudaMemoryStats {
  allocated: number;
  peakAllocated: number;
  reserved: number;
  peakReserved: number;
}

export const cuda = {
  isAvailable(): boolean { return N.cudaIsAvailable(); },
  deviceCount(): number { return N.cudaDeviceCount(); },
  synchronize(device = 0): void { N.cudaSynchronize(device); },
  manualSeedAll(seed: number): void { N.cudaManualSeedAll(seed); },
  memoryStats(device = 0): CudaMemoryStats { return N.cudaMemoryStats(device); },
  resetPeakMemoryStats(device = 0): void { N.cudaResetPeak(device); },
  /** Free and total memory of a device in bytes, as the driver reports them (torch.cuda.mem_get_info). */
  memoryInfo(device = 0): { free: number; total: number } { return N.cudaMemoryInfo(device); },
  emptyCache(): void { N.cudaEmptyCache(); },
  /**
   * TensorFloat-32 for float32 CUDA matmuls (cuBLAS) and convolutions (cuDNN), as PyTorch's
   * torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32. Training turns both on
   * (DMD2 does); parity checks turn both off. Either may be omitted to keep its current value.
   */
  setAllowTF32(o: Partial<TF32Settings>): void {
    const cur = N.getAllowTF32();
    N.setAllowTF32(o.matmul ?? cur.matmul, o.cudnn ?? cur.cudnn);
  },
  allowTF32(): TF32Settings { return N.getAllowTF32(); },
  /**
   * Deterministic kernels, as PyTorch's torch.use_deterministic_algorithms(algorithms, warn_only=warnOnly),
   * torch.backends.cudnn.deterministic and torch.backends.cudnn.benchmark (global, CPU and CUDA). With
   * `algorithms` on, an operation without a deterministic kernel throws an error naming itself (or warns,
   * with `warnOnly`). cuBLAS additionally needs CUBLAS_WORKSPACE_CONFIG=:4096:8 before its first use: this
   * sets it in the environment when unset, so call it before any CUDA matmul. Omitted fields keep their value.
   */
  setDeterminism(o: Partial<DeterminismSettings>): void {
    const cur = N.getDeterminism();
    if (o.algorithms) process.env.CUBLAS_WORKSPACE_CONFIG ??= ':4096:8';
    N.setDeterminism(o.algorithms ?? cur.algorithms, o.warnOnly ?? cur.warnOnly, o.cudnnDeterministic ?? cur.cudnnDeterministic, o.cudnnBenchmark ?? cur.cudnnBenchmark);
  },
  determinism(): DeterminismSettings { return N.getDeterminism(); },
  /** Whether this build of the addon was compiled against a CUDA libtorch. */
  builtWithCuda(): boolean { return N.buildInfo().cuda; },
  /**
   * Why CUDA cannot be used here, in one line, or null when it can: a CPU-only build, or a CUDA build
   * that sees no device (with what CUDA_VISIBLE_DEVICES is, the usual culprit besides the driver).
   */
  unavailableReason(): string | null {
    if (!N.buildInfo().cuda) return 'this addon was built against a CPU-only libtorch';
    if (N.cudaIsAvailable() && N.cudaDeviceCount() > 0) return null;
    return `CUDA build, no device visible (${visibleDevices()})`;
  },
  /** 'CPU build', 'CUDA build, no device visible' or 'CUDA build, N devices visible'. */
  describeBuild(): string {
    if (!N.buildInfo().cuda) return 'CPU build';
    const n = N.cudaIsAvailable() ? N.cudaDeviceCount() : 0;
    return n === 0 ? 'CUDA build, no device visible' : `CUDA build, ${n} device${n === 1 ? '' : 's'} visible`;
  },
};

/** CUDA_VISIBLE_DEVICES as a phrase: "CUDA_VISIBLE_DEVICES is unset" or "CUDA_VISIBLE_DEVICES='0,1'". */
export function visibleDevices(env: NodeJS.ProcessEnv = process.env): string {
  const v = env.CUDA_VISIBLE_DEVICES;
  return v === undefined ? 'CUDA_VISIBLE_DEVICES is unset' : `CUDA_VISIBLE_DEVICES='${v}'`;
}
