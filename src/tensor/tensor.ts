// The Tensor class: a typed wrapper over one native handle. Every method is one native call.
import { inspect } from 'node:util';
import { N, type TensorHandle, type GeneratorHandle } from '../native.js';
import { type DType, dtypeCode, dtypeFromCode, viewBytes, type AnyTypedArray, isDType } from './dtype.js';
import { type Device, checkDevice, isDevice } from './device.js';
import { track, keep as keepTensor } from './scope.js';

const UNARY = [
  'neg', 'exp', 'log', 'log2', 'log1p', 'expm1', 'sqrt', 'rsqrt', 'abs', 'sign', 'sin', 'cos', 'tan', 'tanh', 'sigmoid',
  'silu', 'relu', 'gelu', 'softplus', 'floor', 'ceil', 'round', 'trunc', 'reciprocal', 'square', 'erf', 'isnan', 'isinf',
  'isfinite', 'logicalNot', 'contiguous', 'clone', 'detach', 'zerosLike', 'onesLike', 'emptyLike',
] as const;
const BINARY = [
  'add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'atan2', 'fmod', 'remainder', 'eq', 'ne', 'lt', 'le', 'gt', 'ge',
  'logicalAnd', 'logicalOr', 'logicalXor', 'floorDivide', 'copy', 'matmul', 'mm', 'bmm', 'outer',
] as const;
const REDUCE = ['sum', 'mean', 'amax', 'amin', 'logsumexp', 'all', 'any', 'nansum', 'prod'] as const;
type UnaryName = (typeof UNARY)[number];
type BinaryName = (typeof BINARY)[number];
type ReduceName = (typeof REDUCE)[number];

function ids<T extends string>(wanted: readonly T[], native: string[], family: string): Record<T, number> {
  const out = {} as Record<T, number>;
  for (const name of wanted) {
    const i = native.indexOf(name);
    if (i < 0) throw new Error(`dmd-torch: the native addon lacks the ${family} op '${name}'; rebuild it (npm run build:native)`);
    out[name] = i;
  }
  return out;
}
const U = ids(UNARY, N.opNames.unary, 'unary');
const B = ids(BINARY, N.opNames.binary, 'binary');
const R = ids(REDUCE, N.opNames.reduce, 'reduce');

export type Operand = Tensor | number | boolean;
export type Dims = number | readonly number[];

function dimsArg(d: Dims | undefined | null): readonly number[] | null {
  if (d === undefined || d === null) return null;
  return typeof d === 'number' ? [d] : d;
}

function op(x: Operand): TensorHandle | number | boolean {
  return x instanceof Tensor ? x.handle : x;
}

export function disposedError(): TypeError {
  return new TypeError(
    'this tensor was disposed (by dispose() or by the tidy() scope that created it); keep it with keep() or return it from tidy()',
  );
}

export interface ToOptions {
  dtype?: DType;
  device?: Device;
  copy?: boolean;
}

export interface BackwardOptions {
  retainGraph?: boolean;
  createGraph?: boolean;
}

export class Tensor {
  /** @internal */ _h: TensorHandle | null;
  /** @internal */ _kept = false;

  /** Wraps a native handle (library use). The tensor joins the innermost tidy() scope. */
  constructor(handle: TensorHandle) {
    this._h = handle;
    track(this);
  }

  /** The native handle; throws when the tensor was disposed. */
  get handle(): TensorHandle {
    const h = this._h;
    if (h === null) throw disposedError();
    return h;
  }

  // ---- metadata -------------------------------------------------------------------------------
  get shape(): number[] { return N.shape(this.handle); }
  get dtype(): DType { return dtypeFromCode(N.dtype(this.handle)); }
  get device(): Device { return N.device(this.handle) as Device; }
  get ndim(): number { return N.dim(this.handle); }
  get numel(): number { return N.numel(this.handle); }
  get isContiguous(): boolean { return N.isContiguous(this.handle); }
  get isDisposed(): boolean { return this._h === null; }
  size(dim: number): number {
    const s = this.shape;
    const d = dim < 0 ? dim + s.length : dim;
    if (d < 0 || d >= s.length) throw new RangeError(`size(${dim}): tensor has ${s.length} dims`);
    return s[d]!;
  }

  // ---- lifetime -------------------------------------------------------------------------------
  dispose(): void {
    const h = this._h;
    if (h === null) return;
    this._h = null;
    N.dispose(h);
  }
  [Symbol.dispose](): void { this.dispose(); }
  /** Exempts this tensor from tidy() scopes. */
  keep(): this { return keepTensor(this); }

  // ---- readback -------------------------------------------------------------------------------
  item(): number {
    const v = N.item(this.handle);
    return typeof v === 'boolean' ? (v ? 1 : 0) : v;
  }
  /** Raw little-endian bytes (copied to the CPU, contiguous). */
  bytes(): Buffer { return N.toBuffer(this.handle); }
  /** The elements as the dtype's TypedArray (float16/bfloat16 as raw Uint16 bits). */
  data(): AnyTypedArray { return viewBytes(this.bytes(), this.dtype); }
  toFloat32Array(): Float32Array {
    if (this.dtype === 'float32') return this.data() as Float32Array;
    const t = N.to(this.handle, dtypeCode('float32'), null, false);
    try { return viewBytes(N.toBuffer(t), 'float32') as Float32Array; } finally { N.dispose(t); }
  }
  toFloat64Array(): Float64Array {
    if (this.dtype === 'float64') return this.data() as Float64Array;
    const t = N.to(this.handle, dtypeCode('float64'), null, false);
    try { return viewBytes(N.toBuffer(t), 'float64') as Float64Array; } finally { N.dispose(t); }
  }
  /** Flattened values as JS numbers. */
  toArray(): number[] { return Array.from(this.toFloat64Array()); }

  // ---- unary ----------------------------------------------------------------------------------
  private u(name: UnaryName): Tensor { return new Tensor(N.unary(U[name], this.handle)); }
  private ui(name: UnaryName): this { N.unaryInplace(U[name], this.handle); return this; }
  neg(): Tensor { return this.u('neg'); }
  exp(): Tensor { return this.u('exp'); }
  log(): Tensor { return this.u('log'); }
  log2(): Tensor { return this.u('log2'); }
  log1p(): Tensor { return this.u('log1p'); }
  expm1(): Tensor { return this.u('expm1'); }
  sqrt(): Tensor { return this.u('sqrt'); }
  rsqrt(): Tensor { return this.u('rsqrt'); }
  abs(): Tensor { return this.u('abs'); }
  sign(): Tensor { return this.u('sign'); }
  sin(): Tensor { return this.u('sin'); }
  cos(): Tensor { return this.u('cos'); }
  tan(): Tensor { return this.u('tan'); }
  tanh(): Tensor { return this.u('tanh'); }
  sigmoid(): Tensor { return this.u('sigmoid'); }
  silu(): Tensor { return this.u('silu'); }
  relu(): Tensor { return this.u('relu'); }
  gelu(): Tensor { return this.u('gelu'); }
  softplus(beta = 1, threshold = 20): Tensor {
    return beta === 1 && threshold === 20 ? this.u('softplus') : new Tensor(N.softplusEx(this.handle, beta, threshold));
  }
  floor(): Tensor { return this.u('floor'); }
  ceil(): Tensor { return this.u('ceil'); }
  round(): Tensor { return this.u('round'); }
  trunc(): Tensor { return this.u('trunc'); }
  reciprocal(): Tensor { return this.u('reciprocal'); }
  square(): Tensor { return this.u('square'); }
  erf(): Tensor { return this.u('erf'); }
  isnan(): Tensor { return this.u('isnan'); }
  isinf(): Tensor { return this.u('isinf'); }
  isfinite(): Tensor { return this.u('isfinite'); }
  logicalNot(): Tensor { return this.u('logicalNot'); }
  contiguous(): Tensor { return this.u('contiguous'); }
  clone(): Tensor { return this.u('clone'); }
  detach(): Tensor { return this.u('detach'); }
  zerosLike(): Tensor { return this.u('zerosLike'); }
  onesLike(): Tensor { return this.u('onesLike'); }
  emptyLike(): Tensor { return this.u('emptyLike'); }
  neg_(): this { return this.ui('neg'); }
  exp_(): this { return this.ui('exp'); }
  log_(): this { return this.ui('log'); }
  sqrt_(): this { return this.ui('sqrt'); }
  abs_(): this { return this.ui('abs'); }
  sigmoid_(): this { return this.ui('sigmoid'); }
  tanh_(): this { return this.ui('tanh'); }
  relu_(): this { return this.ui('relu'); }
  silu_(): this { return this.ui('silu'); }
  reciprocal_(): this { return this.ui('reciprocal'); }
  zero_(): this { return this.ui('zerosLike'); }
  detach_(): this { return this.ui('detach'); }
  fill_(value: number | boolean): this { N.fill(this.handle, value); return this; }

  // ---- binary ---------------------------------------------------------------------------------
  private b(name: BinaryName, o: Operand): Tensor { return new Tensor(N.binary(B[name], this.handle, op(o))); }
  private bi(name: BinaryName, o: Operand): this { N.binaryInplace(B[name], this.handle, op(o)); return this; }
  add(o: Operand, alpha = 1): Tensor {
    return alpha === 1 ? this.b('add', o) : new Tensor(N.addScaled(this.handle, op(o), alpha, false) as TensorHandle);
  }
  sub(o: Operand, alpha = 1): Tensor {
    return alpha === 1 ? this.b('sub', o) : new Tensor(N.addScaled(this.handle, op(o), -alpha, false) as TensorHandle);
  }
  mul(o: Operand): Tensor { return this.b('mul', o); }
  div(o: Operand): Tensor { return this.b('div', o); }
  pow(o: Operand): Tensor { return this.b('pow', o); }
  /** n - this */
  rsub(n: number): Tensor { return new Tensor(N.binary(B.sub, n, this.handle)); }
  /** n / this */
  rdiv(n: number): Tensor { return new Tensor(N.binary(B.div, n, this.handle)); }
  /** n ** this */
  rpow(n: number): Tensor { return new Tensor(N.binary(B.pow, n, this.handle)); }
  maximum(o: Operand): Tensor { return this.b('maximum', o); }
  minimum(o: Operand): Tensor { return this.b('minimum', o); }
  atan2(o: Operand): Tensor { return this.b('atan2', o); }
  fmod(o: Operand): Tensor { return this.b('fmod', o); }
  remainder(o: Operand): Tensor { return this.b('remainder', o); }
  floorDivide(o: Operand): Tensor { return this.b('floorDivide', o); }
  eq(o: Operand): Tensor { return this.b('eq', o); }
  ne(o: Operand): Tensor { return this.b('ne', o); }
  lt(o: Operand): Tensor { return this.b('lt', o); }
  le(o: Operand): Tensor { return this.b('le', o); }
  gt(o: Operand): Tensor { return this.b('gt', o); }
  ge(o: Operand): Tensor { return this.b('ge', o); }
  logicalAnd(o: Operand): Tensor { return this.b('logicalAnd', o); }
  logicalOr(o: Operand): Tensor { return this.b('logicalOr', o); }
  logicalXor(o: Operand): Tensor { return this.b('logicalXor', o); }
  matmul(o: Tensor): Tensor { return this.b('matmul', o); }
  mm(o: Tensor): Tensor { return this.b('mm', o); }
  bmm(o: Tensor): Tensor { return this.b('bmm', o); }
  outer(o: Tensor): Tensor { return this.b('outer', o); }
  add_(o: Operand, alpha = 1): this {
    if (alpha === 1) return this.bi('add', o);
    N.addScaled(this.handle, op(o), alpha, true);
    return this;
  }
  sub_(o: Operand, alpha = 1): this {
    if (alpha === 1) return this.bi('sub', o);
    N.addScaled(this.handle, op(o), -alpha, true);
    return this;
  }
  mul_(o: Operand): this { return this.bi('mul', o); }
  div_(o: Operand): this { return this.bi('div', o); }
  pow_(o: Operand): this { return this.bi('pow', o); }
  /** Copies values from src (broadcast, dtype/device converted) into this tensor. */
  copy_(src: Tensor): this { return this.bi('copy', src); }

  // ---- fused elementwise -----------------------------------------------------------------------
  clamp(min?: number | null, max?: number | null): Tensor { return new Tensor(N.clamp(this.handle, min, max, false) as TensorHandle); }
  clamp_(min?: number | null, max?: number | null): this { N.clamp(this.handle, min, max, true); return this; }
  nanToNum(nan = 0, posinf?: number, neginf?: number): Tensor { return new Tensor(N.nanToNum(this.handle, nan, posinf, neginf)); }
  lerp(end: Tensor, weight: number | Tensor): Tensor {
    return new Tensor(N.lerp(this.handle, end.handle, weight instanceof Tensor ? weight.handle : weight, false) as TensorHandle);
  }
  lerp_(end: Tensor, weight: number | Tensor): this {
    N.lerp(this.handle, end.handle, weight instanceof Tensor ? weight.handle : weight, true);
    return this;
  }
  addcmul(t1: Tensor, t2: Tensor, value = 1): Tensor { return new Tensor(N.addcmul(this.handle, t1.handle, t2.handle, value, false) as TensorHandle); }
  addcmul_(t1: Tensor, t2: Tensor, value = 1): this { N.addcmul(this.handle, t1.handle, t2.handle, value, true); return this; }
  addcdiv(t1: Tensor, t2: Tensor, value = 1): Tensor { return new Tensor(N.addcdiv(this.handle, t1.handle, t2.handle, value, false) as TensorHandle); }
  addcdiv_(t1: Tensor, t2: Tensor, value = 1): this { N.addcdiv(this.handle, t1.handle, t2.handle, value, true); return this; }
  maskedFill(mask: Tensor, value: Operand): Tensor { return new Tensor(N.maskedFill(this.handle, mask.handle, op(value))); }

  // ---- reductions -----------------------------------------------------------------------------
  private r(name: ReduceName, dims?: Dims | null, keepdim = false): Tensor {
    return new Tensor(N.reduce(R[name], this.handle, dimsArg(dims), keepdim));
  }
  sum(dims?: Dims | null, keepdim = false): Tensor { return this.r('sum', dims, keepdim); }
  mean(dims?: Dims | null, keepdim = false): Tensor { return this.r('mean', dims, keepdim); }
  amax(dims?: Dims | null, keepdim = false): Tensor { return this.r('amax', dims, keepdim); }
  amin(dims?: Dims | null, keepdim = false): Tensor { return this.r('amin', dims, keepdim); }
  /** Maximum over all elements (0-dim). */
  max(): Tensor { return this.r('amax'); }
  min(): Tensor { return this.r('amin'); }
  /** [values, indices] of the maximum along dim. */
  maxDim(dim: number, keepdim = false): [Tensor, Tensor] {
    const [v, i] = N.extremeDim(true, this.handle, dim, keepdim);
    return [new Tensor(v), new Tensor(i)];
  }
  minDim(dim: number, keepdim = false): [Tensor, Tensor] {
    const [v, i] = N.extremeDim(false, this.handle, dim, keepdim);
    return [new Tensor(v), new Tensor(i)];
  }
  logsumexp(dims: Dims, keepdim = false): Tensor { return this.r('logsumexp', dims, keepdim); }
  all(dims?: Dims | null, keepdim = false): Tensor { return this.r('all', dims, keepdim); }
  any(dims?: Dims | null, keepdim = false): Tensor { return this.r('any', dims, keepdim); }
  nansum(dims?: Dims | null, keepdim = false): Tensor { return this.r('nansum', dims, keepdim); }
  prod(dim?: number | null, keepdim = false): Tensor { return this.r('prod', dim, keepdim); }
  /** Standard deviation; correction 1 = unbiased (PyTorch's default). */
  std(dims?: Dims | null, opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return new Tensor(N.stdVar(true, this.handle, dimsArg(dims), opts.correction ?? 1, opts.keepdim ?? false));
  }
  var(dims?: Dims | null, opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return new Tensor(N.stdVar(false, this.handle, dimsArg(dims), opts.correction ?? 1, opts.keepdim ?? false));
  }
  norm(p = 2, dims?: Dims | null, keepdim = false): Tensor { return new Tensor(N.norm(this.handle, p, dimsArg(dims), keepdim)); }
  argmax(dim?: number | null, keepdim = false): Tensor { return new Tensor(N.argExtreme(true, this.handle, dim, keepdim)); }
  argmin(dim?: number | null, keepdim = false): Tensor { return new Tensor(N.argExtreme(false, this.handle, dim, keepdim)); }
  cumsum(dim: number): Tensor { return new Tensor(N.cumsum(this.handle, dim)); }

  // ---- shape and indexing ------------------------------------------------------------------------
  reshape(shape: readonly number[]): Tensor { return new Tensor(N.reshape(this.handle, shape)); }
  view(shape: readonly number[]): Tensor { return new Tensor(N.view(this.handle, shape)); }
  permute(dims: readonly number[]): Tensor { return new Tensor(N.permute(this.handle, dims)); }
  transpose(d0: number, d1: number): Tensor { return new Tensor(N.transpose(this.handle, d0, d1)); }
  /** Matrix transpose of a 2-D tensor. */
  t(): Tensor { return this.transpose(0, 1); }
  squeeze(dim?: number): Tensor { return new Tensor(N.squeeze(this.handle, dim)); }
  unsqueeze(dim: number): Tensor { return new Tensor(N.unsqueeze(this.handle, dim)); }
  flatten(start = 0, end = -1): Tensor { return new Tensor(N.flatten(this.handle, start, end)); }
  expand(shape: readonly number[]): Tensor { return new Tensor(N.expand(this.handle, shape)); }
  repeat(reps: readonly number[]): Tensor { return new Tensor(N.repeat(this.handle, reps)); }
  flip(dims: Dims): Tensor { return new Tensor(N.flip(this.handle, dimsArg(dims)!)); }
  roll(shifts: readonly number[], dims: readonly number[]): Tensor { return new Tensor(N.roll(this.handle, shifts, dims)); }
  /** Python's x[..., start:end:step] along dim (negative indices allowed). */
  slice(dim: number, start?: number | null, end?: number | null, step = 1): Tensor {
    return new Tensor(N.slice(this.handle, dim, start, end, step));
  }
  narrow(dim: number, start: number, length: number): Tensor { return this.slice(dim, start, start + length); }
  select(dim: number, index: number): Tensor { return new Tensor(N.select(this.handle, dim, index)); }
  /** A view of this tensor's storage with the given sizes, strides and storage offset (in elements; bounds-checked). */
  asStrided(size: readonly number[], stride: readonly number[], offset = 0): Tensor { return new Tensor(N.asStrided(this.handle, size, stride, offset)); }
  indexSelect(dim: number, index: Tensor): Tensor { return new Tensor(N.indexSelect(this.handle, dim, index.handle)); }
  gather(dim: number, index: Tensor): Tensor { return new Tensor(N.gather(this.handle, dim, index.handle)); }
  scatter(dim: number, index: Tensor, src: Operand): Tensor { return new Tensor(N.scatter(this.handle, dim, index.handle, op(src))); }
  /** this[index] = values, index an int64 tensor over dim 0 or a bool mask. */
  indexPut_(index: Tensor, values: Operand): this { N.indexPut(this.handle, index.handle, op(values)); return this; }
  split(sizes: number | readonly number[], dim = 0): Tensor[] { return N.split(this.handle, sizes, dim).map((h) => new Tensor(h)); }
  chunk(n: number, dim = 0): Tensor[] { return N.chunk(this.handle, n, dim).map((h) => new Tensor(h)); }
  topk(k: number, dim = -1, largest = true, sorted = true): [Tensor, Tensor] {
    const [v, i] = N.topk(this.handle, k, dim, largest, sorted);
    return [new Tensor(v), new Tensor(i)];
  }
  sort(dim = -1, descending = false): [Tensor, Tensor] {
    const [v, i] = N.sort(this.handle, dim, descending);
    return [new Tensor(v), new Tensor(i)];
  }
  bincount(minlength = 0): Tensor { return new Tensor(N.bincount(this.handle, minlength)); }
  diagonal(offset = 0): Tensor { return new Tensor(N.diagonal(this.handle, offset)); }
  tril(k = 0): Tensor { return new Tensor(N.tril(this.handle, k)); }
  softmax(dim: number): Tensor { return new Tensor(N.softmax(this.handle, dim)); }
  logSoftmax(dim: number): Tensor { return new Tensor(N.logSoftmax(this.handle, dim)); }
  allclose(o: Tensor, rtol = 1e-5, atol = 1e-8): boolean { return N.allclose(this.handle, o.handle, rtol, atol); }
  equal(o: Tensor): boolean { return N.equal(this.handle, o.handle); }

  // ---- conversion -----------------------------------------------------------------------------
  /** to('cuda'), to('float16'), or to({dtype, device, copy}). Returns a new tensor (sharing data when nothing changes and copy is false). */
  to(target: DType | Device | ToOptions): Tensor {
    let o: ToOptions;
    if (typeof target === 'string') {
      if (isDType(target)) o = { dtype: target };
      else if (isDevice(target)) o = { device: target };
      else throw new TypeError(`to(): '${target}' is neither a dtype nor a device`);
    } else {
      o = target;
    }
    return new Tensor(
      N.to(this.handle, o.dtype ? dtypeCode(o.dtype) : null, o.device ? checkDevice(o.device) : null, o.copy ?? false),
    );
  }
  float(): Tensor { return this.to('float32'); }
  double(): Tensor { return this.to('float64'); }
  half(): Tensor { return this.to('float16'); }
  bfloat16(): Tensor { return this.to('bfloat16'); }
  long(): Tensor { return this.to('int64'); }
  int(): Tensor { return this.to('int32'); }
  bool(): Tensor { return this.to('bool'); }
  cpu(): Tensor { return this.to('cpu'); }
  cuda(index = 0): Tensor { return this.to(`cuda:${index}`); }

  // ---- random fills -----------------------------------------------------------------------------
  normal_(mean = 0, std = 1, generator?: { handle: GeneratorHandle }): this {
    N.normal(this.handle, mean, std, generator?.handle);
    return this;
  }
  uniform_(from = 0, to = 1, generator?: { handle: GeneratorHandle }): this {
    N.uniform(this.handle, from, to, generator?.handle);
    return this;
  }

  // ---- autograd ---------------------------------------------------------------------------------
  get requiresGrad(): boolean { return N.requiresGrad(this.handle); }
  requiresGrad_(on = true): this { N.setRequiresGrad(this.handle, on); return this; }
  get isLeaf(): boolean { return N.isLeaf(this.handle); }
  /** The accumulated gradient (a new handle sharing its storage), or null. */
  get grad(): Tensor | null {
    const g = N.grad(this.handle);
    return g ? new Tensor(g) : null;
  }
  set grad(g: Tensor | null) { N.setGrad(this.handle, g ? g.handle : null); }
  retainGrad(): this { N.retainGrad(this.handle); return this; }
  backward(grad?: Tensor | null, opts: BackwardOptions = {}): void {
    N.backward(this.handle, grad ? grad.handle : null, opts.retainGraph ?? null, opts.createGraph ?? false);
  }

  // ---- display ------------------------------------------------------------------------------------
  toString(): string {
    if (this._h === null) return 'Tensor(<disposed>)';
    const head = `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device}`;
    if (this.numel <= 16 && this.dtype !== 'int64') return `${head}, values=[${this.toArray().map((v) => +v.toPrecision(6)).join(', ')}])`;
    return head + ')';
  }
  [inspect.custom](): string { return this.toString(); }
}
