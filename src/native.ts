// Loads the libtorch addon and types its surface. Only src/ talks to this module; users see the
// typed API built on it (Tensor, Module, ...).
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

declare const tensorBrand: unique symbol;
declare const moduleBrand: unique symbol;
declare const generatorBrand: unique symbol;
/** Opaque native handles. */
export interface TensorHandle { readonly [tensorBrand]: true }
export interface ModuleHandle { readonly [moduleBrand]: true }
declare const storeBrand: unique symbol;
declare const groupBrand: unique symbol;
export interface StoreHandle { readonly [storeBrand]: true }
export interface GroupHandle { readonly [groupBrand]: true }
export interface GeneratorHandle { readonly [generatorBrand]: true }

type H = TensorHandle;
type Opt<T> = T | null | undefined;
type Operand = H | number | boolean;
/** A tensor list for foreach ops: handles, or the gradients of the given parameters. */
export type HandleList = readonly H[] | { readonly gradsOf: readonly H[] };
export interface NamedHandles { names: string[]; tensors: H[] }

export interface EDMForwardFlags {
  dtype: number;
  returnBottleneck: boolean;
}

/** The addon's functions (native/*.cc), argument order as in C++. */
/** TensorFloat-32 use for float32 work on CUDA (Ampere and newer): cuBLAS matmuls and cuDNN convolutions. */
export interface TF32Settings { matmul: boolean; cudnn: boolean }
/** Deterministic kernels: torch.use_deterministic_algorithms(algorithms, warn_only), torch.backends.cudnn.deterministic / .benchmark. */
export interface DeterminismSettings { algorithms: boolean; warnOnly: boolean; cudnnDeterministic: boolean; cudnnBenchmark: boolean }

export interface BuildInfo {
  torchVersion: string;
  cuda: boolean;
  sdpa: boolean;
  /** the current TF32 settings (libtorch's defaults: matmul off, cuDNN on) */
  tf32: TF32Settings;
  /** the c10d process-group backends this build has ('gloo', 'nccl') */
  distributed: string[];
  parallelInfo: string;
}

export interface NativeBinding {
  // tensor.cc
  dispose(t: H): void;
  disposeMany(ts: readonly H[]): void;
  isDisposed(t: H): boolean;
  liveTensors(): number;
  isTensor(v: unknown): v is H;
  shape(t: H): number[];
  strides(t: H): number[];
  dim(t: H): number;
  numel(t: H): number;
  dtype(t: H): number;
  device(t: H): string;
  isContiguous(t: H): boolean;
  sameStorage(a: H, b: H): boolean;
  item(t: H): number | boolean;
  toBuffer(t: H): Buffer;
  // creation.cc
  empty(shape: readonly number[], dtype: Opt<number>, device: Opt<string>): H;
  zeros(shape: readonly number[], dtype: Opt<number>, device: Opt<string>): H;
  ones(shape: readonly number[], dtype: Opt<number>, device: Opt<string>): H;
  full(shape: readonly number[], value: number | boolean, dtype: Opt<number>, device: Opt<string>): H;
  arange(start: number, end: number, step: number, dtype: Opt<number>, device: Opt<string>): H;
  linspace(start: number, end: number, steps: number, dtype: Opt<number>, device: Opt<string>): H;
  eye(n: number, dtype: Opt<number>, device: Opt<string>): H;
  fromTypedArray(data: ArrayBufferView, shape: readonly number[], dtype: Opt<number>, share: boolean): H;
  fromBuffer(bytes: Uint8Array, shape: readonly number[], dtype: number): H;
  fromFile(path: string, offset: number, shape: readonly number[], dtype: number): H;
  // ops.cc
  opNames: { unary: string[]; binary: string[]; reduce: string[] };
  unary(id: number, t: H): H;
  unaryInplace(id: number, t: H): void;
  binary(id: number, a: Operand, b: Operand): H;
  binaryInplace(id: number, a: H, b: Operand): void;
  addScaled(a: H, b: Operand, alpha: number, inplace: boolean): H | undefined;
  reduce(id: number, t: H, dims: Opt<readonly number[]>, keepdim: boolean): H;
  stdVar(isStd: boolean, t: H, dims: Opt<readonly number[]>, correction: number, keepdim: boolean): H;
  norm(t: H, p: number, dims: Opt<readonly number[]>, keepdim: boolean): H;
  argExtreme(isMax: boolean, t: H, dim: Opt<number>, keepdim: boolean): H;
  extremeDim(isMax: boolean, t: H, dim: number, keepdim: boolean): [H, H];
  cumsum(t: H, dim: number): H;
  reshape(t: H, shape: readonly number[]): H;
  view(t: H, shape: readonly number[]): H;
  permute(t: H, dims: readonly number[]): H;
  transpose(t: H, d0: number, d1: number): H;
  squeeze(t: H, dim: Opt<number>): H;
  unsqueeze(t: H, dim: number): H;
  flatten(t: H, start: number, end: number): H;
  expand(t: H, shape: readonly number[]): H;
  repeat(t: H, reps: readonly number[]): H;
  flip(t: H, dims: readonly number[]): H;
  roll(t: H, shifts: readonly number[], dims: readonly number[]): H;
  slice(t: H, dim: number, start: Opt<number>, end: Opt<number>, step: number): H;
  select(t: H, dim: number, index: number): H;
  asStrided(t: H, size: readonly number[], stride: readonly number[], offset: number): H;
  indexSelect(t: H, dim: number, index: H): H;
  gather(t: H, dim: number, index: H): H;
  scatter(t: H, dim: number, index: H, src: Operand): H;
  indexPut(t: H, index: H, values: Operand): void;
  cat(ts: HandleList, dim: number): H;
  stack(ts: HandleList, dim: number): H;
  split(t: H, sizes: number | readonly number[], dim: number): H[];
  chunk(t: H, n: number, dim: number): H[];
  maskedFill(t: H, mask: H, value: Operand): H;
  where(cond: H, a: Operand, b: Operand): H;
  clamp(t: H, min: Opt<number>, max: Opt<number>, inplace: boolean): H | undefined;
  nanToNum(t: H, nan: number, posinf: Opt<number>, neginf: Opt<number>): H;
  lerp(a: H, b: H, w: H | number, inplace: boolean): H | undefined;
  addcmul(t: H, t1: H, t2: H, value: number, inplace: boolean): H | undefined;
  addcdiv(t: H, t1: H, t2: H, value: number, inplace: boolean): H | undefined;
  fill(t: H, value: number | boolean): void;
  to(t: H, dtype: Opt<number>, device: Opt<string>, copy: boolean): H;
  einsum(eq: string, ts: HandleList): H;
  topk(t: H, k: number, dim: number, largest: boolean, sorted: boolean): [H, H];
  sort(t: H, dim: number, descending: boolean): [H, H];
  bincount(t: H, minlength: number): H;
  allclose(a: H, b: H, rtol: number, atol: number): boolean;
  equal(a: H, b: H): boolean;
  eigh(t: H): [H, H];
  eigvals(t: H): [H, H];
  diagonal(t: H, offset: number): H;
  tril(t: H, k: number): H;
  // nn.cc
  linear(x: H, w: H, b: Opt<H>): H;
  conv2d(x: H, w: H, b: Opt<H>, stride: number | readonly number[], padding: number | readonly number[],
    dilation: number | readonly number[], groups: number): H;
  convTranspose2d(x: H, w: H, b: Opt<H>, stride: number | readonly number[], padding: number | readonly number[],
    outputPadding: number | readonly number[], groups: number, dilation: number | readonly number[]): H;
  groupNorm(x: H, groups: number, w: Opt<H>, b: Opt<H>, eps: number): H;
  layerNorm(x: H, shape: readonly number[], w: Opt<H>, b: Opt<H>, eps: number): H;
  interpolate(x: H, size: Opt<readonly number[]>, scale: Opt<number>, mode: string, alignCorners: Opt<boolean>, antialias: boolean): H;
  pad(x: H, pads: readonly number[], mode: string, value: number): H;
  softmax(x: H, dim: number): H;
  logSoftmax(x: H, dim: number): H;
  softplusEx(x: H, beta: number, threshold: number): H;
  dropout(x: H, p: number, train: boolean): H;
  avgPool2d(x: H, k: number | readonly number[], stride: Opt<number | readonly number[]>, padding: number | readonly number[]): H;
  maxPool2d(x: H, k: number | readonly number[], stride: Opt<number | readonly number[]>, padding: number | readonly number[]): H;
  adaptiveAvgPool2d(x: H, size: number | readonly number[]): H;
  oneHot(t: H, n: number): H;
  crossEntropy(logits: H, target: H, labelSmoothing: number): H;
  // autograd.cc
  setRequiresGrad(t: H, on: boolean): void;
  requiresGrad(t: H): boolean;
  isLeaf(t: H): boolean;
  backward(t: H, grad: Opt<H>, retainGraph: Opt<boolean>, createGraph: boolean): void;
  grad(t: H): H | null;
  setGrad(t: H, g: Opt<H>): void;
  retainGrad(t: H): void;
  gradEnabled(): boolean;
  setGradEnabled(on: boolean): void;
  autogradGrad(outputs: HandleList, inputs: HandleList, gradOutputs: Opt<HandleList>, retainGraph: Opt<boolean>,
    createGraph: boolean, allowUnused: boolean): (H | null)[];
  // foreach.cc
  foreachHasGrad(ts: HandleList): boolean[];
  foreachZeroGrad(ts: HandleList, setToNone: boolean): void;
  foreachZero(ts: HandleList): void;
  foreachMul(ts: HandleList, other: number | HandleList): void;
  foreachAdd(ts: HandleList, other: number | HandleList, alpha: number): void;
  foreachLerp(ts: HandleList, ends: HandleList, weight: number): void;
  foreachAddcmul(ts: HandleList, a: HandleList, b: HandleList, value: number): void;
  foreachAddcdiv(ts: HandleList, a: HandleList, b: HandleList, value: number): void;
  foreachSqrt(ts: HandleList): void;
  foreachCopy(dst: HandleList, src: HandleList): void;
  foreachZerosLike(ts: HandleList, dtype: Opt<number>): H[];
  foreachClone(ts: HandleList): H[];
  foreachAllFinite(ts: HandleList): boolean;
  clipGradNorm(params: HandleList, maxNorm: number, normType: number): H;
  // random.cc
  createGenerator(device: string, seed: number): GeneratorHandle;
  defaultGenerator(device: string): GeneratorHandle;
  manualSeed(seed: number): void;
  generatorSeed(g: GeneratorHandle, seed: number): void;
  generatorDevice(g: GeneratorHandle): string;
  generatorGetState(g: GeneratorHandle): H;
  generatorSetState(g: GeneratorHandle, state: H): void;
  rand(shape: readonly number[], dtype: Opt<number>, device: Opt<string>, gen: Opt<GeneratorHandle>): H;
  randn(shape: readonly number[], dtype: Opt<number>, device: Opt<string>, gen: Opt<GeneratorHandle>): H;
  randint(low: number, high: number, shape: readonly number[], dtype: Opt<number>, device: Opt<string>, gen: Opt<GeneratorHandle>): H;
  randperm(n: number, dtype: Opt<number>, device: Opt<string>, gen: Opt<GeneratorHandle>): H;
  normal(t: H, mean: number, std: number, gen: Opt<GeneratorHandle>): void;
  uniform(t: H, from: number, to: number, gen: Opt<GeneratorHandle>): void;
  bernoulli(p: H, gen: Opt<GeneratorHandle>): H;
  multinomial(p: H, n: number, replacement: boolean, gen: Opt<GeneratorHandle>): H;
  // module.cc
  moduleKind(m: ModuleHandle): string;
  moduleNamedParameters(m: ModuleHandle): NamedHandles;
  moduleNamedBuffers(m: ModuleHandle): NamedHandles;
  moduleStateNames(m: ModuleHandle): string[];
  moduleTrain(m: ModuleHandle, on: boolean): void;
  moduleIsTraining(m: ModuleHandle): boolean;
  moduleTo(m: ModuleHandle, device: Opt<string>, dtype: Opt<number>): void;
  moduleSetRequiresGrad(m: ModuleHandle, on: boolean): void;
  moduleParameterCount(m: ModuleHandle): number;
  moduleLoadState(m: ModuleHandle, names: readonly string[], tensors: readonly H[], strict: boolean): { missing: string[]; unexpected: string[] };
  moduleCopy(dst: ModuleHandle, src: ModuleHandle): void;
  moduleDispose(m: ModuleHandle): void;
  // serialize.cc
  pickleSave(value: unknown): Buffer;
  // cuda.cc
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  cudaSynchronize(device: number): void;
  cudaManualSeedAll(seed: number): void;
  cudaMemoryStats(device: number): { allocated: number; peakAllocated: number; reserved: number; peakReserved: number };
  cudaMemoryInfo(device: number): { free: number; total: number };
  cudaResetPeak(device: number): void;
  cudaEmptyCache(): void;
  setAllowTF32(matmul: boolean, cudnn: boolean): void;
  getAllowTF32(): TF32Settings;
  setDeterminism(algorithms: boolean, warnOnly: boolean, cudnnDeterministic: boolean, cudnnBenchmark: boolean): void;
  getDeterminism(): DeterminismSettings;
  // runtime.cc
  setNumThreads(n: number): void;
  getNumThreads(): number;
  buildInfo(): BuildInfo;
  // edm_precond.cc (the UNets: edm_song_unet.cc, edm_dhariwal_unet.cc, edm_layers.cc)
  edmCreate(config: Record<string, unknown>): ModuleHandle;
  edmForward(m: ModuleHandle, x: H, sigma: H, labels: Opt<H>, augment: Opt<H>, flags: EDMForwardFlags): H;
  edmBottleneckShape(m: ModuleHandle): { channels: number; resolution: number };
  // sd_unet.cc, sd_vae.cc, clip_text.cc (Stable Diffusion v1; layers in sd_layers.cc)
  sdUnetCreate(config: Record<string, unknown>): ModuleHandle;
  sdUnetForward(m: ModuleHandle, x: H, timesteps: H, context: H, o: { dtype: number; output: 'eps' | 'mid' | 'both' }): H | H[];
  sdUnetInfo(m: ModuleHandle): { midChannels: number; downsample: number };
  sdUnetSetCheckpoint(m: ModuleHandle, on: boolean): void;
  sdVaeCreate(config: Record<string, unknown>): ModuleHandle;
  sdVaeEncode(m: ModuleHandle, image: H, o: { dtype: number }): H;
  sdVaeDecode(m: ModuleHandle, latent: H, o: { dtype: number }): H;
  sdVaeInfo(m: ModuleHandle): { downsample: number; latentChannels: number };
  clipTextCreate(config: Record<string, unknown>): ModuleHandle;
  clipTextForward(m: ModuleHandle, tokens: H, o: { dtype: number }): H;
  clipVisionCreate(config: Record<string, unknown>): ModuleHandle;
  clipVisionForward(m: ModuleHandle, pixels: H, o: { dtype: number }): H;
  // lpips.cc
  lpipsCreate(): ModuleHandle;
  lpipsForward(m: ModuleHandle, x0: H, x1: H, resize: number, dtype: Opt<number>): H;
  // gan_head.cc
  ganHeadCreate(config: { channels: number; resolution: number }): ModuleHandle;
  ganHeadForward(m: ModuleHandle, features: H): H;
  // classifier.cc
  classifierCreate(config: { inChannels: number; classes: number; width: number }): ModuleHandle;
  classifierFeatures(m: ModuleHandle, x: H): H;
  classifierLogits(m: ModuleHandle, x: H): H;
  // distributed.cc
  storeCreate(o: { host: string; port: number; isServer: boolean; worldSize?: number; timeoutMs?: number; waitWorkers?: boolean }): StoreHandle;
  storePrefix(s: StoreHandle, prefix: string): StoreHandle;
  resolveHost(name: string): string;
  storeSet(s: StoreHandle, key: string, value: string | Uint8Array): void;
  storeGet(s: StoreHandle, key: string): Buffer;
  storeAdd(s: StoreHandle, key: string, amount: number): number;
  storeWait(s: StoreHandle, keys: readonly string[], timeoutMs: number): void;
  storeCheck(s: StoreHandle, keys: readonly string[]): boolean;
  groupCreate(s: StoreHandle, rank: number, size: number, o: { backend: string; timeoutMs: number; device?: number }): GroupHandle;
  groupBroadcast(g: GroupHandle, tensors: readonly H[], root: number): void;
  groupAllreduce(g: GroupHandle, tensors: readonly H[]): void;
  groupAllgather(g: GroupHandle, t: H): H[];
  groupBarrier(g: GroupHandle): void;
  groupBroadcastTensors(g: GroupHandle, tensors: readonly H[], root: number, bucketBytes: number): void;
  groupAverageGradients(g: GroupHandle, params: readonly H[], bucketBytes: number): number;
  groupDestroy(g: GroupHandle): void;
  // torchscript.cc
  scriptLoad(path: string, device: Opt<string>): ModuleHandle;
  scriptState(m: ModuleHandle): NamedHandles;
  scriptCall(m: ModuleHandle, method: string, args: readonly unknown[], kwargs: Record<string, unknown>): unknown;
}

function addonPath(): string {
  // src/native.ts and dist/native.js both sit one level below the package root
  return fileURLToPath(new URL('../build/Release/dmd_torch.node', import.meta.url));
}

function avx512(): boolean {
  try {
    return /^flags\s*:.*\bavx512f\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

function load(): NativeBinding {
  const path = addonPath();
  if (!existsSync(path)) {
    throw new Error(
      `dmd-torch: the native addon is not built (${path} is missing). Run 'npm run build:native' in the dmd-torch ` +
        `package; it needs libtorch (apt-get install libtorch-dev, or LIBTORCH=<libtorch dir>, see README).`,
    );
  }
  // Debian 13's libtorch links OpenMPI and so UCX, whose memory hooks (mmap/munmap interception, set up
  // when the library loads) now and then crash V8 (seen as a segfault in 2-4% of short runs). Neither
  // MPI nor UCX is used here: their hooks are off unless the environment says otherwise.
  for (const [k, v] of [['UCX_MEM_EVENTS', 'no'], ['UCX_MEM_MALLOC_HOOKS', 'no'], ['UCX_MEM_MMAP_HOOK_MODE', 'none']] as const) process.env[k] ??= v;
  // libtorch's own log lines (c10d's connection retries print one warning per attempt) are condensed
  // into our errors, which name the rank, the address and the fix: only its errors are printed, unless
  // TORCH_CPP_LOG_LEVEL says otherwise
  process.env.TORCH_CPP_LOG_LEVEL ??= 'ERROR';
  // The oneDNN 3.7 that Debian 13's libtorch 2.6 links gives NaN losses now and then on an AVX-512 CPU
  // (AMD EPYC, Zen 4: a DMD run's fake-score loss NaN at its 2nd-7th iteration in about half the runs,
  // one thread, ISA limit AVX2 too; held to SSE4.1 the same run passed 5 times of 5; Debian 12's
  // libtorch 1.13 with oneDNN 2.6 is right on the same CPU, and earlier CI machines passed with libtorch 2.6).
  // oneDNN takes its ISA limit from the environment when libtorch loads: an addon linked against a
  // versioned libtorch 2.x (a distribution's) on an AVX-512 CPU is held to SSE4.1 here, unless the
  // environment sets the limit itself. (In a worker thread process.env is a copy: set it before node.)
  if (avx512() && /libtorch_cpu\.so\.([2-9]|\d\d)\./.test(readFileSync(path).toString('latin1'))) process.env.ONEDNN_MAX_CPU_ISA ??= 'SSE41';
  const require = createRequire(import.meta.url);
  try {
    return require(path) as NativeBinding;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`dmd-torch: loading ${path} failed: ${msg}. If libtorch moved since the build, rebuild with 'npm run build:native'.`);
  }
}

export const N: NativeBinding = load();

// Debian's libtorch starts with one intra-op thread; use every core unless told otherwise.
{
  const env = process.env.DMD_NUM_THREADS;
  const n = env !== undefined && env !== '' ? Number(env) : availableParallelism();
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`DMD_NUM_THREADS must be a positive integer, got '${env}'`);
  N.setNumThreads(n);
}
