// PyTorch's pickles without PyTorch: the allow-list of globals that torch.save files, NVlabs EDM
// snapshots and torchvision/LPIPS weights use, each implemented here as data (tensors rebuilt as views
// of their storages, OrderedDicts as dicts, EDM's persistent classes as their recorded state, NumPy
// scalars as numbers), and the legacy (pre-1.6) torch.save stream: magic number, protocol, system
// info, the object pickle with storages as persistent ids, the storage keys, then each storage's
// element count and bytes.
import { Tensor } from '../tensor/tensor.js';
import { fromBytes } from '../tensor/create.js';
import { ELEMENT_SIZE, type DType } from '../tensor/dtype.js';
import { unpickle, buildable, sourceOf, swapBytes, FileRange, PickleError, PyDict, PyObject, PySet, PyGlobal, type ByteSource, type GlobalImpl, type PyValue } from './pickle.js';

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'float32', DoubleStorage: 'float64', HalfStorage: 'float16', BFloat16Storage: 'bfloat16',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8', BoolStorage: 'bool',
};
const TORCH_DTYPES: Record<string, DType> = {
  float32: 'float32', float: 'float32', float64: 'float64', double: 'float64', float16: 'float16', half: 'float16', bfloat16: 'bfloat16',
  int64: 'int64', long: 'int64', int32: 'int32', int: 'int32', int16: 'int16', short: 'int16', int8: 'int8', uint8: 'uint8', bool: 'bool',
};
const NUMPY_DTYPES: Record<string, { dtype: DType | 'int16'; read: (v: DataView, le: boolean) => number | bigint | boolean }> = {
  f8: { dtype: 'float64', read: (v, le) => v.getFloat64(0, le) },
  f4: { dtype: 'float32', read: (v, le) => v.getFloat32(0, le) },
  i8: { dtype: 'int64', read: (v, le) => { const x = v.getBigInt64(0, le); return x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x; } },
  i4: { dtype: 'int32', read: (v, le) => v.getInt32(0, le) },
  i2: { dtype: 'int16', read: (v, le) => v.getInt16(0, le) },
  i1: { dtype: 'int8', read: (v) => v.getInt8(0) },
  u1: { dtype: 'uint8', read: (v) => v.getUint8(0) },
  b1: { dtype: 'bool', read: (v) => v.getUint8(0) !== 0 },
};

/**
 * A storage: one flat buffer of elements that tensors are views of (made once, on first use). A
 * legacy storage view is a window [start, start + numel) of its root storage.
 */
export class Storage {
  private base: Tensor | null = null;

  constructor(
    readonly dtype: DType,
    readonly numel: number,
    /** makes the flat tensor of numel elements (from memory, a zip entry or straight from the file) */
    private readonly make: () => Tensor,
    readonly name: string,
    private readonly root: Storage | null = null,
    /** the first element of this storage in its root's buffer */
    readonly start = 0,
  ) {}

  /** The whole (root) storage as a 1-D tensor (owned by the storage until release()). */
  tensor(): Tensor {
    if (this.root) return this.root.tensor();
    this.base ??= this.make();
    return this.base;
  }

  /** Frees the flat tensor (views made from it keep the memory alive). */
  release(): void {
    this.base?.dispose();
    this.base = null;
  }
}

/** A NumPy dtype (numpy.dtype + BUILD): its kind/size code and byte order. */
export class NumpyDType {
  littleEndian = true;
  constructor(readonly code: string) {}
}

/** A NumPy array (numpy.core.multiarray._reconstruct + BUILD): shape, dtype and raw bytes. */
export class NumpyArray {
  shape: number[] = [];
  dtype: NumpyDType | null = null;
  data: Uint8Array | FileRange = new Uint8Array(0);

  /** As a tensor (copied; little-endian numeric dtypes). */
  toTensor(): Tensor {
    const spec = this.dtype ? NUMPY_DTYPES[this.dtype.code.replace(/^[<>|=]/, '')] : undefined;
    if (!spec) throw new PickleError(`a NumPy array of dtype ${this.dtype?.code ?? 'unknown'} cannot become a tensor`);
    const dtype = spec.dtype as DType;
    const raw = this.data instanceof FileRange ? this.data.read() : this.data;
    return fromBytes(this.dtype!.littleEndian ? raw : swapBytes(raw, ELEMENT_SIZE[dtype]), this.shape, dtype);
  }
}

/** Checks shape/stride/offset of a saved view against its storage and against the input size. */
function rebuildTensor(storage: PyValue, offset: PyValue, size: PyValue, stride: PyValue, limitBytes: number, dryRun = false): Tensor | null {
  if (!(storage instanceof Storage)) throw new PickleError(`a tensor refers to a ${storage === null ? 'missing' : 'non-'}storage`);
  const ints = (v: PyValue, what: string): number[] => {
    if (!Array.isArray(v) || !v.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) throw new PickleError(`a tensor's ${what} is not a tuple of non-negative integers`);
    return v as number[];
  };
  const sz = ints(size, 'size');
  const st = ints(stride, 'stride');
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) throw new PickleError("a tensor's storage offset is not a non-negative integer");
  if (sz.length !== st.length) throw new PickleError(`a tensor has ${sz.length} sizes but ${st.length} strides`);
  const numel = sz.reduce((a, b) => a * b, 1);
  // a view that repeats a small storage (stride 0) is legal, one far larger than the whole input is a bomb
  if (numel * ELEMENT_SIZE[storage.dtype] > limitBytes) throw new PickleError(`a tensor of shape [${sz}] would take ${numel * ELEMENT_SIZE[storage.dtype]} bytes, far more than the file holds; refused`);
  const last = numel === 0 ? -1 : (offset as number) + sz.reduce((a, s, i) => a + (s - 1) * st[i]!, 0);
  if (last >= storage.numel) throw new PickleError(`${storage.name}: the storage holds ${storage.numel} elements but a tensor of shape [${sz}] needs ${last + 1} (truncated or damaged file)`);
  return dryRun ? null : storage.tensor().asStrided(sz, st, storage.start + (offset as number));
}

export interface TorchPickleContext {
  /** names the input in errors */
  what: string;
  /** the size of the whole input: tensors far larger than it are refused */
  limitBytes: number;
  /** storages made while reading (released by the reader once the tensors exist) */
  storages: Storage[];
  /** the first pass over a legacy stream's object: tensors are checked but not made (their data comes later) */
  dryRun?: boolean;
}

const dictLike: GlobalImpl = {
  call: (args) => {
    const d = new PyDict();
    const items = args[0];
    if (Array.isArray(items)) for (const kv of items) if (Array.isArray(kv) && kv.length === 2) d.map.set(kv[0]!, kv[1]!);
    return buildable(d, dictLike);
  },
  build: () => {},
};
const setLike: GlobalImpl = { call: (args) => new PySet(Array.isArray(args[0]) ? [...(args[0] as PyValue[])] : []) };
/** A class whose instances stay inert data: its arguments and state are recorded, nothing runs. */
const record = (name: string): GlobalImpl => ({ call: (args) => new PyObject(name, args) });

/** The allow-list: every global these files need, as data. Everything else is refused by the unpickler. */
export function torchGlobals(ctx: TorchPickleContext): (module: string, name: string) => GlobalImpl | undefined {
  const tensorV2: GlobalImpl = { call: (a) => rebuildTensor(a[0]!, a[1]!, a[2]!, a[3]!, ctx.limitBytes, ctx.dryRun) };
  const table: Record<string, GlobalImpl> = {
    'torch._utils._rebuild_tensor_v2': tensorV2,
    'torch._utils._rebuild_tensor': tensorV2,
    'torch._utils._rebuild_parameter': { call: (a) => a[0]! },
    'torch._utils._rebuild_parameter_with_state': { call: (a) => a[0]! },
    'torch._tensor._rebuild_from_type_v2': {
      call: (a) => {
        const fn = a[0];
        if (!(fn instanceof PyGlobal) || !fn.impl.call) throw new PickleError('_rebuild_from_type_v2 without an allow-listed function');
        return fn.impl.call(Array.isArray(a[2]) ? (a[2] as PyValue[]) : []);
      },
    },
    'torch.storage._load_from_bytes': {
      call: (a) => {
        if (!(a[0] instanceof Uint8Array || a[0] instanceof FileRange)) throw new PickleError('_load_from_bytes without bytes');
        return readLegacyStream(sourceOf(a[0]), { ...ctx, what: `${ctx.what} (a storage)` }).value;
      },
    },
    'torch.Size': { call: (a) => (Array.isArray(a[0]) ? [...(a[0] as PyValue[])] : []) },
    'torch.device': { call: (a) => a.map(String).join(':') },
    'collections.OrderedDict': dictLike,
    'collections.defaultdict': { call: () => buildable(new PyDict(), dictLike) },
    'dnnlib.util.EasyDict': dictLike,
    'builtins.set': setLike, '__builtin__.set': setLike,
    'builtins.frozenset': setLike, '__builtin__.frozenset': setLike,
    'builtins.bytearray': { call: (a) => (a[0] instanceof Uint8Array ? a[0] : typeof a[0] === 'string' ? Buffer.from(a[0], 'latin1') : new Uint8Array(0)) },
    '_codecs.encode': {
      call: (a) => {
        if (typeof a[0] !== 'string' || !/^latin-?1$/i.test(String(a[1] ?? ''))) throw new PickleError('_codecs.encode is allowed only for latin-1 text (how Python 2 pickles bytes)');
        return new Uint8Array(Buffer.from(a[0], 'latin1'));
      },
    },
    'copyreg._reconstructor': {
      call: (a) => {
        const cls = a[0];
        if (!(cls instanceof PyGlobal) || !cls.impl.call) throw new PickleError('copyreg._reconstructor of a class that is not allow-listed');
        return cls.impl.call([]);
      },
    },
    'torch_utils.persistence._reconstruct_persistent_obj': {
      // NVlabs' persistent classes carry their Python source (module_src): it is never looked at; the
      // object is its class name and recorded state
      call: (a) => {
        const meta = a[0];
        if (!(meta instanceof PyDict)) throw new PickleError('_reconstruct_persistent_obj without its meta dict');
        const o = new PyObject(String(meta.get('class_name') ?? 'unknown'));
        o.state = meta.get('state') ?? null;
        return o;
      },
    },
    'numpy.dtype': {
      call: (a) => buildable(new NumpyDType(String(a[0])), {
        build: (obj, state) => {
          if (Array.isArray(state) && typeof state[1] === 'string') (obj as NumpyDType).littleEndian = state[1] !== '>';
        },
      }),
    },
    'numpy.core.multiarray._reconstruct': { call: () => buildable(new NumpyArray(), numpyArrayBuild) },
    'numpy._core.multiarray._reconstruct': { call: () => buildable(new NumpyArray(), numpyArrayBuild) },
    'numpy.ndarray': record('numpy.ndarray'),
    'numpy.core.multiarray.scalar': { call: numpyScalar },
    'numpy._core.multiarray.scalar': { call: numpyScalar },
  };
  return (module, name) => {
    const q = `${module}.${name}`;
    if (table[q]) return table[q];
    if (module === 'torch' && STORAGE_DTYPES[name]) return { call: () => STORAGE_DTYPES[name]! };
    if (module === 'torch' && TORCH_DTYPES[name]) return { call: () => TORCH_DTYPES[name]! };
    // torch.nn module classes (ModuleDict, ...) pickled as plain instances: inert records of their state
    if (/^torch\.nn\.modules\.[a-z_]+$/.test(module) && /^[A-Z][A-Za-z0-9]*$/.test(name)) return record(q);
    return undefined;
  };
}

const numpyArrayBuild: GlobalImpl = {
  build: (obj, state) => {
    const a = obj as NumpyArray;
    // (version, shape, dtype, is_fortran, rawdata)
    if (!Array.isArray(state) || state.length < 5) throw new PickleError('a NumPy array without its state');
    const [, shape, dtype, fortran, raw] = state;
    if (fortran) throw new PickleError('Fortran-order NumPy arrays are not read');
    if (!(raw instanceof Uint8Array || raw instanceof FileRange)) throw new PickleError('a NumPy array of Python objects is not read');
    a.shape = (shape as number[]).map(Number);
    a.dtype = dtype instanceof NumpyDType ? dtype : null;
    a.data = raw;
  },
};

function numpyScalar(a: PyValue[]): PyValue {
  const [dtype, raw] = a;
  if (!(dtype instanceof NumpyDType) || !(raw instanceof Uint8Array)) throw new PickleError('a NumPy scalar without dtype and bytes');
  const spec = NUMPY_DTYPES[dtype.code.replace(/^[<>|=]/, '')];
  if (!spec) throw new PickleError(`a NumPy scalar of dtype ${dtype.code} is not read`);
  return spec.read(new DataView(raw.buffer, raw.byteOffset, raw.byteLength), dtype.littleEndian);
}

/** The persistent id of a storage in either torch.save format: (dtype, key, element count[, view]). */
export function storageId(pid: PyValue): { dtype: DType; key: string; numel: number; view: PyValue } {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) throw new PickleError(`unknown persistent id ${JSON.stringify(String(pid))} (only tensor storages are read)`);
  const type = pid[1];
  const dtype = type instanceof PyGlobal ? (type.module === 'torch' ? STORAGE_DTYPES[type.name] ?? TORCH_DTYPES[type.name] : undefined) : undefined;
  if (!dtype) throw new PickleError(`a storage of unknown type ${type instanceof PyGlobal ? type.qualified : String(type)}`);
  const numel = pid[4];
  if (!Number.isSafeInteger(numel) || (numel as number) < 0) throw new PickleError('a storage with an invalid element count');
  return { dtype, key: String(pid[2]), numel: numel as number, view: pid[5] ?? null };
}

/**
 * The legacy torch.save stream: returns the object, its storages filled from the data after the
 * pickles. The object pickle comes before the data, so it is read twice: once to learn its storages
 * and where it ends (no tensor is made), once more, after the data, to make its tensors.
 */
export function readLegacyStream(src: ByteSource, ctx: TorchPickleContext): { value: PyValue } {
  const findGlobal = torchGlobals(ctx);
  const plain = (offset: number) => unpickle(src, { what: ctx.what, offset, findGlobal });
  const magic = plain(0);
  if (magic.value !== 0x1950a86a20f9469cfc6cn) throw new PickleError(`${ctx.what}: not a legacy torch.save stream (wrong magic number)`);
  const proto = plain(magic.end);
  if (proto.value !== 1001) throw new PickleError(`${ctx.what}: legacy torch.save protocol ${String(proto.value)}, expected 1001`);
  const info = plain(proto.end);
  const little = !(info.value instanceof PyDict) || info.value.get('little_endian') !== false;
  const roots = new Map<string, { storage: Storage; at: number | null }>();
  const persistentLoad = (pid: PyValue): PyValue => {
    const id = storageId(pid);
    let root = roots.get(id.key);
    if (!root) {
      const r: { storage: Storage; at: number | null } = { storage: null as unknown as Storage, at: null };
      r.storage = new Storage(id.dtype, id.numel, () => {
        if (r.at === null) throw new PickleError(`${ctx.what}: storage ${id.key} has no data (truncated file)`);
        return src.tensor(r.at, id.numel, id.dtype, !little);
      }, `${ctx.what}: storage ${id.key}`);
      roots.set(id.key, r);
      ctx.storages.push(r.storage);
      root = r;
    }
    if (id.view === null) return root.storage;
    // a storage view (view_key, offset, size): a window onto the root's elements
    const [, offset, size] = id.view as [string, number, number];
    const base = root.storage;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || offset < 0 || size < 0 || offset + size > base.numel) throw new PickleError(`${ctx.what}: a storage view outside its storage`);
    return new Storage(base.dtype, size, () => base.tensor(), base.name, base, offset);
  };
  // pass 1: the storages and the end of the object pickle, without tensors
  const dry = unpickle(src, { what: ctx.what, offset: info.end, findGlobal: torchGlobals({ ...ctx, dryRun: true }), persistentLoad });
  const keys = plain(dry.end);
  if (!Array.isArray(keys.value)) throw new PickleError(`${ctx.what}: the storage key list is missing`);
  let pos = keys.end;
  for (const k of keys.value) {
    const root = roots.get(String(k));
    if (!root) throw new PickleError(`${ctx.what}: storage ${String(k)} is listed but never used`);
    if (pos + 8 > src.length) throw new PickleError(`${ctx.what}: truncated before the data of storage ${String(k)}`);
    const c = src.bytes(pos, 8);
    const count = Number(new DataView(c.buffer, c.byteOffset, 8).getBigInt64(0, little));
    pos += 8;
    const nbytes = count * ELEMENT_SIZE[root.storage.dtype];
    if (count < 0 || count !== root.storage.numel || pos + nbytes > src.length)
      throw new PickleError(`${ctx.what}: storage ${String(k)} should hold ${root.storage.numel} elements but the file ${count !== root.storage.numel ? `says ${count}` : `ends after ${src.length - pos} of its ${nbytes} bytes`} (truncated or damaged)`);
    root.at = pos;
    pos += nbytes;
  }
  // pass 2: the object with its tensors
  return { value: unpickle(src, { what: ctx.what, offset: info.end, findGlobal, persistentLoad }).value };
}
