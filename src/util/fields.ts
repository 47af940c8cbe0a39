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
    z.number().int().min(1).max(256).default(1).describe('start this many data-parallel processes on this machine (the cores split between them); with --nnodes, on each machine. torchrun and srun launches with one task per GPU need no flag'),
  nnodes: () =>
    z.number().int().min(1).max(65536).optional().describe('machines of a multi-node launch, each starting --nproc-per-node processes (default: $NNODES, SLURM_NNODES under srun with one task per node, else 1)'),
  nodeRank: () =>
    z.number().int().min(0).max(65535).optional().describe("this machine's index among --nnodes; node 0 hosts the rendezvous (default: $NODE_RANK, SLURM_NODEID under srun, else 0)"),
  masterAddr: () =>
    z.string().min(1).optional().describe("node 0's address, reachable from every node (default: $MASTER_ADDR, the first host of SLURM_JOB_NODELIST, 127.0.0.1 for one node)"),
  masterPort: () => z.number().int().min(1).max(65535).optional().describe('TCP port of the rendezvous on node 0 (default: $MASTER_PORT, 29500 with several nodes, a free port for one)'),
  distBackend: () => z.enum(['auto', 'gloo', 'nccl']).default('auto').describe('process-group backend of multi-process runs (auto: NCCL with CUDA, else Gloo)'),
  distTimeout: () => z.number().min(0).default(0).describe('seconds a collective waits for the other processes before the run stops naming the missing rank (0: 600 on CUDA, 120 on CPU)'),
};

/** The multi-process settings of the commands that can run data-parallel (how a job is launched, not what it computes). */
export const distributedShape = () => ({
  nprocPerNode: fields.nprocPerNode(), nnodes: fields.nnodes(), nodeRank: fields.nodeRank(), masterAddr: fields.masterAddr(), masterPort: fields.masterPort(),
  distBackend: fields.distBackend(), distTimeout: fields.distTimeout(),
});

/** The keys of distributedShape(): settings that may differ between the ranks of one job and between a run and its resume. */
export const DISTRIBUTED_KEYS: readonly string[] = Object.keys(distributedShape());

/** A command's settings without the launch settings (and the listed keys): what every rank must agree on. */
export function withoutLaunch<T extends object>(cfg: T, also: readonly string[] = []): Record<string, unknown> {
  return Object.fromEntries(Object.entries(cfg).filter(([k]) => !DISTRIBUTED_KEYS.includes(k) && !also.includes(k)));
}
