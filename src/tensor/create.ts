// Creating tensors: constants, ranges, from JS data, and the n-ary functions (cat, stack, where, einsum).
import { N, type TensorHandle } from '../native.js';
import { type DType, dtypeCode, ELEMENT_SIZE, type AnyTypedArray } from './dtype.js';
import { type Device, checkDevice } from './device.js';
import { Tensor, type Operand } from './tensor.js';

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

function finish(h: TensorHandle, o: TensorOptions): Tensor {
  const t = new Tensor(h);
  if (o.requiresGrad) t.requiresGrad_(true);
  return t;
}
const dt = (o: TensorOptions) => (o.dtype ? dtypeCode(o.dtype) : null);
const dev = (o: TensorOptions) => (o.device ? checkDevice(o.device) : null);

function checkShape(shape: readonly number[]): readonly number[] {
  if (!Array.isArray(shape)) throw new TypeError(`shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  return shape;
}

export function zeros(shape: readonly number[], o: TensorOptions = {}): Tensor { return finish(N.zeros(checkShape(shape), dt(o), dev(o)), o); }
export function ones(shape: readonly number[], o: TensorOptions = {}): Tensor { return finish(N.ones(checkShape(shape), dt(o), dev(o)), o); }
export function empty(shape: readonly number[], o: TensorOptions = {}): Tensor { return finish(N.empty(checkShape(shape), dt(o), dev(o)), o); }
export function full(shape: readonly number[], value: number | boolean, o: TensorOptions = {}): Tensor {
  return finish(N.full(checkShape(shape), value, dt(o), dev(o)), o);
}
/** arange(end) or arange(start, end, step): like torch.arange (int64 for integer arguments unless dtype is given). */
export function arange(start: number, end?: number, step = 1, o: TensorOptions = {}): Tensor {
  const [s, e] = end === undefined ? [0, start] : [start, end];
  const integral = Number.isInteger(s) && Number.isInteger(e) && Number.isInteger(step);
  const d = o.dtype ?? (integral ? 'int64' : 'float32');
  return finish(N.arange(s, e, step, dtypeCode(d), dev(o)), o);
}
export function linspace(start: number, end: number, steps: number, o: TensorOptions = {}): Tensor {
  return finish(N.linspace(start, end, steps, dt(o), dev(o)), o);
}
export function eye(n: number, o: TensorOptions = {}): Tensor { return finish(N.eye(n, dt(o), dev(o)), o); }

/**
 * A tensor over a TypedArray's memory, without copying (like torch.from_numpy): writes through either
 * side are visible to the other, and the array stays alive as long as the tensor does. CPU only.
 */
export function fromArray(data: AnyTypedArray, shape?: readonly number[], o: { dtype?: DType } = {}): Tensor {
  return new Tensor(N.fromTypedArray(data, shape ?? [data.length], o.dtype ? dtypeCode(o.dtype) : null, true));
}

type Nested = number | boolean | readonly Nested[];

function inferShape(data: Nested): number[] {
  const shape: number[] = [];
  let cur: Nested = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0] as Nested;
  }
  return shape;
}

function flattenInto(data: Nested, shape: number[], depth: number, out: number[]): void {
  if (depth === shape.length) {
    if (typeof data === 'boolean') out.push(data ? 1 : 0);
    else if (typeof data === 'number') out.push(data);
    else throw new TypeError('tensor(): ragged nested array (an element is an array where a number was expected)');
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[depth])
    throw new TypeError(`tensor(): ragged nested array at depth ${depth} (expected length ${shape[depth]})`);
  for (const d of data as readonly Nested[]) flattenInto(d, shape, depth + 1, out);
}

/** A new tensor holding a copy of the data: a number, nested arrays, or a TypedArray (with shape). */
export function tensor(data: Nested | AnyTypedArray, o: TensorOptions & { shape?: readonly number[] } = {}): Tensor {
  if (ArrayBuffer.isView(data)) {
    const h = N.fromTypedArray(data, o.shape ?? [data.length], null, false);
    if (!o.dtype && !o.device) return finish(h, o);
    const t = N.to(h, dt(o), dev(o), false);
    N.dispose(h);
    return finish(t, o);
  }
  const shape = inferShape(data);
  const flat: number[] = [];
  flattenInto(data, shape, 0, flat);
  const d = o.dtype ?? (typeof (Array.isArray(data) ? flat[0] : data) === 'boolean' ? 'bool' : 'float32');
  const buf = d === 'float64' ? new Float64Array(flat) : new Float32Array(flat);
  const h = N.fromTypedArray(buf, shape, null, false);
  const needsCast = (d !== 'float64' && d !== 'float32') || o.device !== undefined;
  if (!needsCast) return finish(h, o);
  const t = N.to(h, dtypeCode(d), dev(o), false);
  N.dispose(h);
  return finish(t, o);
}

/** A tensor from raw little-endian bytes (copied). */
export function fromBytes(bytes: Uint8Array, shape: readonly number[], dtype: DType): Tensor {
  const need = shape.reduce((a, b) => a * b, 1) * ELEMENT_SIZE[dtype];
  if (bytes.byteLength !== need)
    throw new RangeError(`fromBytes: ${bytes.byteLength} bytes given, shape [${shape.join(', ')}] of ${dtype} needs ${need}`);
  return new Tensor(N.fromBuffer(bytes, shape, dtypeCode(dtype)));
}

/** A tensor read from raw little-endian bytes at a file offset, straight into its memory. */
export function fromFile(path: string, offset: number, shape: readonly number[], dtype: DType): Tensor {
  return new Tensor(N.fromFile(path, offset, shape, dtypeCode(dtype)));
}

const handles = (ts: readonly Tensor[]) => ts.map((t) => t.handle);

export function cat(ts: readonly Tensor[], dim = 0): Tensor { return new Tensor(N.cat(handles(ts), dim)); }
export function stack(ts: readonly Tensor[], dim = 0): Tensor { return new Tensor(N.stack(handles(ts), dim)); }
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  return new Tensor(N.where(cond.handle, a instanceof Tensor ? a.handle : a, b instanceof Tensor ? b.handle : b));
}
export function einsum(equation: string, ...ts: Tensor[]): Tensor { return new Tensor(N.einsum(equation, handles(ts))); }
/** [eigenvalues ascending, eigenvectors] of a symmetric matrix. */
export function eigh(t: Tensor): [Tensor, Tensor] {
  const [l, q] = N.eigh(t.handle);
  return [new Tensor(l), new Tensor(q)];
}
/** Eigenvalues of a general matrix as [real parts, imaginary parts]. */
export function eigvals(t: Tensor): [Tensor, Tensor] {
  const [re, im] = N.eigvals(t.handle);
  return [new Tensor(re), new Tensor(im)];
}
