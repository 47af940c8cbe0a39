// safetensors header parsing (pure: no native addon), used by the reader and by unit tests. The
// header is untrusted input: every field is checked before any byte is used.
import { readSync, fstatSync } from 'node:fs';
import { type DType, ELEMENT_SIZE } from '../tensor/dtype.js';

export const ST_TO_DTYPE: Record<string, DType> = {
  F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};
export const DTYPE_TO_ST: Record<DType, string> = Object.fromEntries(Object.entries(ST_TO_DTYPE).map(([k, v]) => [v, k])) as Record<DType, string>;
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

export function readExactly(fd: number, length: number, position: number, path: string): Buffer {
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

