// NumPy .npy / .npz reading (EDM's fid-refs: mu and sigma), little-endian C-order arrays of
// float32/float64/int64/int32/uint8/bool.
import { readFileSync } from 'node:fs';
import { ZipReader } from './zip.js';
import { fromBytes } from '../tensor/create.js';
import type { Tensor } from '../tensor/tensor.js';
import type { DType } from '../tensor/dtype.js';

export class NpyError extends Error {
  readonly code = 'ERR_NPY';
}

const DESCR: Record<string, DType> = { '<f4': 'float32', '<f8': 'float64', '<i8': 'int64', '<i4': 'int32', '|u1': 'uint8', '|b1': 'bool', '<f2': 'float16' };

export function parseNpy(buf: Buffer, name = 'array'): Tensor {
  if (buf.length < 10 || buf.readUInt8(0) !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY') throw new NpyError(`${name}: not a .npy array`);
  const major = buf[6]!;
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new NpyError(`${name}: malformed .npy header`);
  const dtype = DESCR[descr];
  if (!dtype) throw new NpyError(`${name}: unsupported dtype '${descr}' (little-endian f2/f4/f8/i4/i8/u1/b1 only)`);
  if (fortran === 'True') throw new NpyError(`${name}: Fortran-order arrays are not supported (save with np.ascontiguousarray)`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const data = buf.subarray(hstart + hlen);
  const want = shape.reduce((a, b) => a * b, 1) * ({ float32: 4, float64: 8, int64: 8, int32: 4, uint8: 1, bool: 1, float16: 2 } as Record<string, number>)[dtype]!;
  if (data.length < want) throw new NpyError(`${name}: truncated (${data.length} of ${want} data bytes)`);
  return fromBytes(new Uint8Array(data.subarray(0, want)), shape, dtype);
}

export function readNpy(file: string): Tensor {
  return parseNpy(readFileSync(file), file);
}

/** All arrays of an .npz (names without the .npy suffix). */
export function readNpz(file: string): Map<string, Tensor> {
  const zip = new ZipReader(file);
  try {
    const out = new Map<string, Tensor>();
    for (const name of zip.entries.keys()) if (name.endsWith('.npy')) out.set(name.slice(0, -4), parseNpy(zip.readEntry(name), `${file}:${name}`));
    return out;
  } finally {
    zip.close();
  }
}
