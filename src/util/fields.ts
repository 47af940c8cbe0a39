// zod fields that several command schemas share, so that each flag means and checks the same thing
// everywhere (the schemas are the single source of defaults, flags and --help).
import { z } from 'zod';

export const fields = {
  device: () =>
    z
      .string()
      .regex(/^(auto|cpu|cuda(:\d+)?)$/, "must be 'cpu', 'cuda', 'cuda:N' or 'auto'")
      .default('auto')
      .describe("'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA when available)"),
  seed: (what = 'random seed') => z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0).describe(what),
  dtype: (what = 'execution dtype of the networks (fp32 master weights)') =>
    z.enum(['float32', 'bfloat16', 'float16']).default('float32').describe(`${what}; float16/bfloat16 need CUDA`),
  tf32: () => z.boolean().default(true).describe('TensorFloat-32 for float32 matmuls and convolutions on CUDA, as DMD2 (--no-tf32: exact float32)'),
  deterministic: () =>
    z.boolean().default(false).describe('deterministic CUDA kernels (use_deterministic_algorithms, cuDNN deterministic, CUBLAS_WORKSPACE_CONFIG=:4096:8): identical runs repeat bit for bit, at some speed; CPU runs always do'),
  batchSize: (d: number, what = 'images per step') => z.number().int().positive().max(1 << 20).default(d).describe(what),
  nprocPerNode: () =>
    z.number().int().min(1).max(256).default(1).describe('start this many data-parallel processes on this machine (127.0.0.1, a free port, the cores split between them); torchrun and srun launches need no flag'),
  distBackend: () => z.enum(['auto', 'gloo', 'nccl']).default('auto').describe('process-group backend of multi-process runs (auto: NCCL with CUDA, else Gloo)'),
  distTimeout: () => z.number().min(0).default(0).describe('seconds a collective waits for the other processes before the run stops naming the missing rank (0: 600 on CUDA, 120 on CPU)'),
};

/** The multi-process settings of the commands that can run data-parallel. */
export const distributedShape = () => ({ nprocPerNode: fields.nprocPerNode(), distBackend: fields.distBackend(), distTimeout: fields.distTimeout() });
