// Devices: 'cpu', 'cuda' or 'cuda:N'.
import { cuda } from './cuda.js';

export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

const DEVICE_RE = /^(cpu|cuda(:\d+)?)$/;

export function isDevice(x: unknown): x is Device {
  return typeof x === 'string' && DEVICE_RE.test(x);
}

export function checkDevice(x: unknown, what = 'device'): Device {
  if (!isDevice(x)) throw new TypeError(`${what} must be 'cpu', 'cuda' or 'cuda:N', got ${JSON.stringify(x)}`);
  return x;
}

export function isCuda(d: Device): boolean {
  return d.startsWith('cuda');
}

/** A device setting ('cpu', 'cuda', 'cuda:N' or 'auto' = CUDA when available) checked against this machine. */
export function resolveDevice(d: string): Device {
  if (d === 'auto') return cuda.isAvailable() ? 'cuda' : 'cpu';
  if (isDevice(d)) {
    if (d !== 'cpu' && !cuda.isAvailable()) throw new Error(`--device ${d}: CUDA is not available here (CPU-only libtorch or no GPU); use --device cpu`);
    return d;
  }
  throw new Error(`--device must be cpu, cuda, cuda:N or auto, got '${d}'`);
}
