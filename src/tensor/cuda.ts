// CUDA device queries and memory statistics.
import { N, type TF32Settings } from '../native.js';

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
  /** Whether this build of the addon was compiled against a CUDA libtorch. */
  builtWithCuda(): boolean { return N.buildInfo().cuda; },
};
