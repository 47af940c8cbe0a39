// The random stream of one process of a DMD run: every draw of an iteration (conditioning, z, noise
// levels, noise) comes from it in a fixed order, so a seeded run repeats exactly. Rank 0's stream is
// a single-process run's; other ranks derive their own. In the test mode of multi-process runs
// (--dist-same-noise) every rank draws the global batch and keeps its slice, so N processes x batch B
// reproduce one process x batch N*B.
import type { Tensor } from '../tensor/tensor.js';
import { randn, randint, Generator } from '../tensor/random.js';
import type { Device } from '../tensor/device.js';

export interface RankPosition {
  rank: number;
  size: number;
}

export class RankRandom {
  constructor(
    readonly gen: Generator,
    private readonly device: Device,
    private readonly place: RankPosition,
    /** draw the global batch on every rank and keep this rank's slice */
    readonly sameNoise: boolean,
  ) {}

  get worldSize(): number { return this.place.size; }

  /** Standard normal noise of this process's batch (shape[0] = its batch size). */
  randn(shape: number[]): Tensor {
    if (!this.sameNoise) return randn(shape, { generator: this.gen, device: this.device });
    const [n, ...rest] = shape;
    return randn([n! * this.place.size, ...rest], { generator: this.gen, device: this.device }).narrow(0, this.place.rank * n!, n!);
  }

  /** n integers uniform in [low, high). */
  randint(low: number, high: number, n: number): Tensor {
    if (!this.sameNoise) return randint(low, high, [n], { generator: this.gen, device: this.device });
    return randint(low, high, [n * this.place.size], { generator: this.gen, device: this.device }).narrow(0, this.place.rank * n, n);
  }

  /** This process's n rows of a global batch (the batch itself in a single-process run). */
  slice<T extends Tensor | null>(t: T, n: number): T {
    return (t && this.place.size > 1 ? t.narrow(0, this.place.rank * n, n) : t) as T;
  }
}
