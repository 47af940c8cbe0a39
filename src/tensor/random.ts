// Random numbers: seedable generators (CPU and CUDA) whose state can be saved and restored.
import { N, type GeneratorHandle } from '../native.js';
import { type DType, dtypeCode } from './dtype.js';
import { type Device, checkDevice } from './device.js';
import { Tensor } from './tensor.js';

function checkSeed(seed: number): number {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative safe integer, got ${seed}`);
  return seed;
}

/**
 * An independent 53-bit seed for stream `stream` of a run seeded with `seed` (splitmix64 mixing), so that
 * each source of randomness of a run (noise, data order, labels, ...) has its own reproducible generator.
 */
export function deriveSeed(seed: number, stream: number): number {
  let z = (BigInt(seed) * 0x9e3779b97f4a7c15n + BigInt(stream) * 0xbf58476d1ce4e5b9n + 0x94d049bb133111ebn) & 0xffffffffffffffffn;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
  z ^= z >> 31n;
  return Number(z & 0x1fffffffffffffn);
}

export class Generator {
  readonly handle: GeneratorHandle;
  private constructor(h: GeneratorHandle) { this.handle = h; }
  /** A fresh generator on a device, seeded. */
  static create(device: Device = 'cpu', seed = 0): Generator {
    return new Generator(N.createGenerator(checkDevice(device), checkSeed(seed)));
  }
  /** libtorch's default generator for a device (what dropout and unseeded calls use). */
  static default(device: Device = 'cpu'): Generator { return new Generator(N.defaultGenerator(checkDevice(device))); }
  get device(): Device { return N.generatorDevice(this.handle) as Device; }
  seed(seed: number): this { N.generatorSeed(this.handle, checkSeed(seed)); return this; }
  /** The full state as a uint8 CPU tensor. */
  getState(): Tensor { return new Tensor(N.generatorGetState(this.handle)); }
  setState(state: Tensor): this { N.generatorSetState(this.handle, state.handle); return this; }
}

/** Seeds libtorch's default generators (CPU and every CUDA device). */
export function manualSeed(seed: number): void {
  N.manualSeed(checkSeed(seed));
}

export interface RandomOptions {
  dtype?: DType;
  device?: Device;
  generator?: Generator;
}
const d = (o: RandomOptions) => (o.dtype ? dtypeCode(o.dtype) : null);
const v = (o: RandomOptions) => (o.device ? checkDevice(o.device) : null);

export function rand(shape: readonly number[], o: RandomOptions = {}): Tensor { return new Tensor(N.rand(shape, d(o), v(o), o.generator?.handle)); }
export function randn(shape: readonly number[], o: RandomOptions = {}): Tensor { return new Tensor(N.randn(shape, d(o), v(o), o.generator?.handle)); }
/** Integers uniform in [low, high). */
export function randint(low: number, high: number, shape: readonly number[], o: RandomOptions = {}): Tensor {
  return new Tensor(N.randint(low, high, shape, d(o), v(o), o.generator?.handle));
}
export function randperm(n: number, o: RandomOptions = {}): Tensor { return new Tensor(N.randperm(n, d(o), v(o), o.generator?.handle)); }
export function bernoulli(p: Tensor, o: { generator?: Generator } = {}): Tensor { return new Tensor(N.bernoulli(p.handle, o.generator?.handle)); }
export function multinomial(p: Tensor, n: number, replacement = false, o: { generator?: Generator } = {}): Tensor {
  return new Tensor(N.multinomial(p.handle, n, replacement, o.generator?.handle));
}
