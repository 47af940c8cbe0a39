// CUDA device queries and memory statistics.
import { N } from '../native.js';

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
  /** Whether this build of the addon was compiled against a CUDA libtorch. */
  builtWithCuda(): boolean { return N.buildInfo().cuda; },
};
