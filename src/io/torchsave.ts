// torch.save files and Python pickles read in TypeScript, never running code (io/pickle.ts with the
// allow-list of io/torch-pickle.ts): the zip format of PyTorch >= 1.6 (data.pkl + one entry per
// storage, CRCs checked), the legacy format before it (torchvision's and LPIPS's weights), and plain
// pickles holding tensors (NVlabs EDM snapshots). Tensors that share a storage stay views of one
// buffer, with the offsets and strides they were saved with. Writing goes through libtorch's pickler
// (the zip format, readable by torch.load(f, weights_only=True)).
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { atomicWrite } from '../util/fs.js';
import { N } from '../native.js';
import { Tensor } from '../tensor/tensor.js';
import { ELEMENT_SIZE } from '../tensor/dtype.js';
import { ZipReader, ZipError } from './zip.js';
import { unpickle, FileRange, FileSource, MemorySource, PickleError, PyDict, PyObject, PySet, type PyValue } from './pickle.js';
import { readLegacyStream, storageId, torchGlobals, NumpyArray, Storage, type TorchPickleContext } from './torch-pickle.js';

export type PickleValue = null | boolean | number | string | Tensor | PickleValue[] | { [key: string]: PickleValue };

/**
 * What readTorchSave returns: PickleValue plus the kinds Python files may also hold. An instance of an
 * allow-listed class is an object with its class under `__class__`, then its state's entries (and
 * `__args__` when it was made with arguments).
 */
export type TorchValue = PickleValue | bigint | Uint8Array | Map<unknown, TorchValue> | TorchValue[] | { [key: string]: TorchValue };

export class TorchSaveError extends Error {
  readonly code = 'ERR_TORCH_SAVE';
}

export type TorchFileKind = 'zip' | 'legacy' | 'pickle';

function statRegular(path: string): number {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new TorchSaveError(`${path}: file not found`);
  }
  if (st.isDirectory()) throw new TorchSaveError(`${path}: is a directory, expected a torch.save (.pt) or pickle (.pkl) file`);
  if (!st.isFile()) throw new TorchSaveError(`${path}: is not a regular file`);
  return st.size;
}

/** The kind of file from its first bytes: a zip archive, a legacy torch.save stream, or another pickle. */
export function torchFileKind(path: string): TorchFileKind | null {
  const fd = openSync(path, 'r');
  const head = Buffer.alloc(4);
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  if (head[0] === 0x50 && head[1] === 0x4b) return 'zip';
  // a pickle starts with PROTO (0x80, protocol 2-5); torch.save's legacy stream starts with the magic number as LONG1
  if (head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5) return head[2] === 0x8a && head[3] === 0x0a ? 'legacy' : 'pickle';
  return null;
}

function releaseAll(ctx: TorchPickleContext): void {
  for (const s of ctx.storages) s.release();
}

function readZip(path: string, ctx: TorchPickleContext): PyValue {
  let zip: ZipReader;
  try {
    zip = new ZipReader(path);
  } catch (e) {
    throw new TorchSaveError(`${path}: damaged or not a torch.save file (${(e as Error).message.replace(`${path}: `, '')}); re-copy or re-create it`);
  }
  try {
    const pkl = [...zip.entries.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n) || n === 'data.pkl');
    if (!pkl) throw new TorchSaveError(`${path}: a zip archive without data.pkl, not a torch.save file`);
    const prefix = pkl.slice(0, -'data.pkl'.length);
    const order = zip.entries.has(`${prefix}byteorder`) ? zip.readEntry(`${prefix}byteorder`).toString('latin1').trim() : 'little';
    const storages = new Map<string, Storage>();
    const persistentLoad = (pid: PyValue): PyValue => {
      const id = storageId(pid);
      let s = storages.get(id.key);
      if (!s) {
        const entry = `${prefix}data/${id.key}`;
        const need = id.numel * ELEMENT_SIZE[id.dtype];
        const e = zip.entries.get(entry);
        if (!e) throw new PickleError(`${path}: storage ${id.key} (entry ${entry}) is missing (truncated or damaged file)`);
        if (e.size < need) throw new PickleError(`${path}: storage ${id.key} holds ${e.size} bytes, its tensors need ${need} (truncated or damaged file)`);
        s = new Storage(id.dtype, id.numel, () => new MemorySource(zip.readEntry(entry)).tensor(0, id.numel, id.dtype, order === 'big'), `${path}: storage ${id.key}`);
        storages.set(id.key, s);
        ctx.storages.push(s);
      }
      return s;
    };
    const value = unpickle(zip.readEntry(pkl), { what: `${path} (${pkl})`, findGlobal: torchGlobals(ctx), persistentLoad }).value;
    return value;
  } catch (e) {
    if (e instanceof ZipError) throw new TorchSaveError(`${path}: damaged or not a torch.save file (${e.message.replace(`${path}: `, '')}); re-copy or re-create it`);
    throw e;
  } finally {
    zip.close();
  }
}

/**
 * Reads a torch.save file (zip or legacy) or a pickle of tensors as Python values: dicts are PyDicts,
 * instances of allow-listed classes PyObjects, tensors Tensors. Refused globals, truncation and
 * damage are TorchSaveErrors naming the file.
 */
export function readPythonFile(path: string): PyValue {
  const size = statRegular(path);
  const kind = size >= 4 ? torchFileKind(path) : null;
  if (!kind) throw new TorchSaveError(`${path}: damaged or not a torch.save file (neither a zip archive nor a pickle); re-copy or re-create it`);
  const ctx: TorchPickleContext = { what: path, limitBytes: 16 * size + 2 ** 20, storages: [] };
  try {
    if (kind === 'zip') return readZip(path, ctx);
    const src = new FileSource(path, size);
    if (kind === 'legacy') return readLegacyStream(src, ctx).value;
    return unpickle(src, { what: path, findGlobal: torchGlobals(ctx) }).value;
  } catch (e) {
    if (e instanceof PickleError) throw new TorchSaveError(e.message);
    throw e;
  } finally {
    releaseAll(ctx);
  }
}

/**
 * Plain JS values: str-keyed dicts become objects (other keys: Maps), sets and tuples arrays, NumPy
 * arrays tensors. A value shared in the file stays shared (so a structure that repeats itself a
 * billion times over costs what the file does, not what it spells out).
 */
export function toPlain(root: PyValue): TorchValue {
  const done = new Map<object, TorchValue>();
  const convert = (v: PyValue): TorchValue => {
    if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string') return v;
    if (v instanceof Uint8Array || v instanceof Tensor) return v;
    if (v instanceof FileRange) return v.read();
    if (typeof v !== 'object') return String(v);
    const known = done.get(v);
    if (known !== undefined) return known;
    let out: TorchValue;
    if (Array.isArray(v) || v instanceof PySet) {
      const arr: TorchValue[] = [];
      done.set(v, arr);
      for (const x of Array.isArray(v) ? v : v.items) arr.push(convert(x));
      out = arr;
    } else if (v instanceof NumpyArray) {
      out = v.toTensor();
    } else if (v instanceof PyObject) {
      const o: { [key: string]: TorchValue } = { __class__: v.className };
      done.set(v, o);
      if (v.args.length) o.__args__ = v.args.map(convert);
      const d = v.dict;
      if (d) for (const [k, x] of d.map) Object.defineProperty(o, String(k), { value: convert(x), enumerable: true, writable: true, configurable: true });
      else if (v.state !== null) o.__state__ = convert(v.state);
      out = o;
    } else if (v instanceof PyDict) {
      if (![...v.map.keys()].every((k) => typeof k === 'string')) {
        const m = new Map<unknown, TorchValue>();
        done.set(v, m);
        for (const [k, x] of v.map) m.set(k, convert(x));
        out = m;
      } else {
        const o: { [key: string]: TorchValue } = {};
        done.set(v, o);
        // defineProperty: a key such as "__proto__" stays a key
        for (const [k, x] of v.map) Object.defineProperty(o, k as string, { value: convert(x), enumerable: true, writable: true, configurable: true });
        out = o;
      }
    } else {
      out = String(v);
    }
    done.set(v, out);
    return out;
  };
  return convert(root);
}

/** Reads a torch.save file (zip or legacy format) as plain JS values (see readPythonFile for the rules). */
export function readTorchSave(path: string): TorchValue {
  return toPlain(readPythonFile(path));
}

/** Writes a value as a torch.save file readable by torch.load (atomically, through atomicWrite). */
export function writeTorchSave(path: string, value: PickleValue, what = 'torch.save file'): void {
  const toNative = (v: PickleValue): unknown => {
    if (v instanceof Tensor) return v.handle;
    if (Array.isArray(v)) return v.map(toNative);
    if (v !== null && typeof v === 'object') {
      const o: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) o[k] = toNative(x);
      return o;
    }
    return v;
  };
  const bytes = N.pickleSave(toNative(value));
  atomicWrite(path, bytes, what);
}
