// safetensors (https://github.com/huggingface/safetensors) read and write; errors name the file and
// the entry. Header validation lives in safetensors-header.ts.
import { openSync, closeSync, statSync } from 'node:fs';
import { atomicWrite, writeAll } from '../util/fs.js';
import { N } from '../native.js';
import { ELEMENT_SIZE, dtypeCode as dtypeCodeOf } from '../tensor/dtype.js';
import { parseHeader, SafetensorsError, DTYPE_TO_ST, type SafetensorsHeader } from './safetensors-header.js';

export { parseHeader, SafetensorsError, type SafetensorsEntry, type SafetensorsHeader } from './safetensors-header.js';
import { Tensor } from '../tensor/tensor.js';
import { type Device } from '../tensor/device.js';

export interface ReadOptions {
  /** Load only these names (all by default); a missing name is an error. */
  names?: readonly string[];
  device?: Device;
}

export interface SafetensorsFile {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

function openForRead(path: string): number {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new SafetensorsError(`${path}: file not found`);
  }
  if (st.isDirectory()) throw new SafetensorsError(`${path}: is a directory, expected a .safetensors file`);
  return openSync(path, 'r');
}

/** Reads the header only (names, dtypes, shapes, metadata). */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const fd = openForRead(path);
  try {
    return parseHeader(fd, path);
  } finally {
    closeSync(fd);
  }
}

/** Reads tensors (CPU unless a device is given) and the metadata of a safetensors file. */
export function readSafetensors(path: string, o: ReadOptions = {}): SafetensorsFile {
  const fd = openForRead(path);
  const tensors = new Map<string, Tensor>();
  try {
    const { entries, metadata } = parseHeader(fd, path);
    const byName = new Map(entries.map((e) => [e.name, e]));
    const wanted = o.names ?? entries.map((e) => e.name);
    for (const name of wanted) {
      const e = byName.get(name);
      if (!e) throw new SafetensorsError(`${path}: has no tensor named '${name}'`);
      // straight from the file into the tensor's memory (one copy)
      let t = new Tensor(N.fromFile(path, e.begin, e.shape, dtypeCodeOf(e.dtype)));
      if (o.device && o.device !== 'cpu') {
        const moved = t.to(o.device);
        t.dispose();
        t = moved;
      }
      tensors.set(name, t);
    }
    return { tensors, metadata };
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    throw err;
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes tensors (any device; copied to the CPU) and string metadata. The file appears atomically:
 * it is written to a temporary name and renamed.
 */
export function writeSafetensors(path: string, tensors: Map<string, Tensor> | Record<string, Tensor>, metadata: Record<string, string> = {}, what = 'safetensors file'): void {
  const items = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const layout: { t: Tensor; size: number }[] = [];
  for (const [name, t] of items) {
    if (name === '__metadata__') throw new TypeError("writeSafetensors: '__metadata__' is reserved");
    const dtype = t.dtype;
    const size = t.numel * ELEMENT_SIZE[dtype];
    header[name] = { dtype: DTYPE_TO_ST[dtype], shape: t.shape, data_offsets: [offset, offset + size] };
    layout.push({ t, size });
    offset += size;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  atomicWrite(path, (fd) => {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeAll(fd, len);
    writeAll(fd, json);
    for (const { t } of layout) writeAll(fd, t.bytes());
  }, what);
}
