// safetensors (https://github.com/huggingface/safetensors) read and write. The header is untrusted
// input: every field is checked before any byte is used, and errors name the file and the entry.
import { openSync, readSync, closeSync, fstatSync, writeSync, renameSync, unlinkSync, statSync } from 'node:fs';
import { N } from '../native.js';
import { type DType, ELEMENT_SIZE, dtypeCode as dtypeCodeOf } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { type Device } from '../tensor/device.js';

const ST_TO_DTYPE: Record<string, DType> = {
  F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};
const DTYPE_TO_ST: Record<DType, string> = Object.fromEntries(Object.entries(ST_TO_DTYPE).map(([k, v]) => [v, k])) as Record<DType, string>;
const MAX_HEADER = 100 * 1024 * 1024;

export interface SafetensorsEntry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number; // absolute file offsets
  end: number;
}

export interface SafetensorsHeader {
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
}

export class SafetensorsError extends Error {
  readonly code = 'ERR_SAFETENSORS';
}

function fail(path: string, msg: string): never {
  throw new SafetensorsError(`${path}: not a valid safetensors file: ${msg}`);
}

function readExactly(fd: number, length: number, position: number, path: string): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) fail(path, `file ends at byte ${position + done}, expected ${position + length}`);
    done += n;
  }
  return buf;
}

/** Parses and validates the header of an open safetensors file. */
export function parseHeader(fd: number, path: string): SafetensorsHeader {
  const size = fstatSync(fd).size;
  if (size < 8) fail(path, `file is ${size} bytes, shorter than the 8-byte header length`);
  const n = readExactly(fd, 8, 0, path).readBigUInt64LE(0);
  if (n > BigInt(Math.min(MAX_HEADER, size - 8))) fail(path, `header length ${n} exceeds the file (${size} bytes) or the 100 MiB limit`);
  const headerLen = Number(n);
  const text = readExactly(fd, headerLen, 8, path).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(path, `header is not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail(path, 'header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = size - dataStart;
  const entries: SafetensorsEntry[] = [];
  const metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(path, '__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(path, `__metadata__.${k} must be a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (typeof raw !== 'object' || raw === null) fail(path, `entry '${name}' is not an object`);
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = typeof e.dtype === 'string' ? ST_TO_DTYPE[e.dtype] : undefined;
    if (!dtype) fail(path, `entry '${name}' has unsupported dtype ${JSON.stringify(e.dtype)} (supported: ${Object.keys(ST_TO_DTYPE).join(', ')})`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      fail(path, `entry '${name}' has an invalid shape ${JSON.stringify(e.shape)}`);
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) || offs[0] > offs[1])
      fail(path, `entry '${name}' has invalid data_offsets ${JSON.stringify(offs)}`);
    const [b, en] = offs as [number, number];
    if (en > dataLen) fail(path, `entry '${name}' ends at data byte ${en} but the file holds only ${dataLen} data bytes (truncated?)`);
    const shape = e.shape as number[];
    const numel = shape.reduce((a, d) => a * d, 1);
    const want = numel * ELEMENT_SIZE[dtype];
    if (en - b !== want) fail(path, `entry '${name}' has ${en - b} bytes but shape [${shape.join(', ')}] of ${dtype} needs ${want}`);
    entries.push({ name, dtype, shape, begin: dataStart + b, end: dataStart + en });
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.begin < sorted[i - 1]!.end) fail(path, `entries '${sorted[i - 1]!.name}' and '${sorted[i]!.name}' overlap`);
  }
  return { entries, metadata };
}

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
      const bytes = readExactly(fd, e.end - e.begin, e.begin, path);
      let t = new Tensor(N.fromBuffer(bytes, e.shape, dtypeCodeOf(e.dtype)));
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
export function writeSafetensors(path: string, tensors: Map<string, Tensor> | Record<string, Tensor>, metadata: Record<string, string> = {}): void {
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
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, len);
    writeSync(fd, json);
    for (const { t } of layout) {
      const b = t.bytes();
      let done = 0;
      while (done < b.length) done += writeSync(fd, b, done, b.length - done);
    }
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try { closeSync(fd); } catch { /* already closed */ }
    try { unlinkSync(tmp); } catch { /* not created */ }
    throw e;
  }
}
