// Devices: 'cpu', 'cuda' or 'cuda:N'.

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
