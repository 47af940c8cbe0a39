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
  batchSize: (d: number, what = 'images per step') => z.number().int().positive().max(1 << 20).default(d).describe(what),
};
