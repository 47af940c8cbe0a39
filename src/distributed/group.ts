// libtorch's c10d, typed: TCPStore / PrefixStore, and a process group (Gloo on CPU tensors, NCCL on
// CUDA tensors) with the collectives DMD training needs. Collectives block until done or until the
// group's timeout; failures are errors naming this rank and the collective (native/distributed.cc).
import { N, type StoreHandle, type GroupHandle } from '../native.js';
import { Tensor } from '../tensor/tensor.js';

export interface TCPStoreOptions {
  host: string;
  port: number;
  /** host the store (rank 0, unless torchrun's agent hosts it) or connect to it */
  isServer: boolean;
  worldSize?: number;
  timeoutMs?: number;
}

export class Store {
  private constructor(readonly handle: StoreHandle) {}

  static tcp(o: TCPStoreOptions): Store {
    return new Store(N.storeCreate({ ...o, waitWorkers: false }));
  }

  /** The address a host name resolves to (throws naming the name when it does not). */
  static resolve(host: string): string {
    return N.resolveHost(host);
  }

  /** A view of this store whose keys are prefixed (PrefixStore). */
  prefix(p: string): Store { return new Store(N.storePrefix(this.handle, p)); }
  set(key: string, value: string | Uint8Array): void { N.storeSet(this.handle, key, value); }
  get(key: string): Buffer { return N.storeGet(this.handle, key); }
  /** Adds to a counter key and returns the new value. */
  add(key: string, amount: number): number { return N.storeAdd(this.handle, key, amount); }
  wait(keys: string[], timeoutMs = 300_000): void { N.storeWait(this.handle, keys, timeoutMs); }
  check(keys: string[]): boolean { return N.storeCheck(this.handle, keys); }
}

export type Backend = 'gloo' | 'nccl';

export class ProcessGroup {
  private constructor(private handle: GroupHandle | null, readonly rank: number, readonly size: number, readonly backend: Backend) {}

  /** Joins the group of `size` processes (every rank calls this with the same store). */
  static create(store: Store, rank: number, size: number, o: { backend: Backend; timeoutMs: number; device?: number }): ProcessGroup {
    return new ProcessGroup(N.groupCreate(store.handle, rank, size, o), rank, size, o.backend);
  }

  private get h(): GroupHandle {
    if (!this.handle) throw new Error('the process group was destroyed');
    return this.handle;
  }

  /** Every tensor becomes root's (in place). */
  broadcast(tensors: Tensor[], root = 0): void { N.groupBroadcast(this.h, tensors.map((t) => t.handle), root); }
  /** In-place sum over the group (Gloo has no average: divide afterwards). */
  allreduce(tensors: Tensor[]): void { N.groupAllreduce(this.h, tensors.map((t) => t.handle)); }
  /** Every rank's tensor (same shape everywhere), in rank order. */
  allgather(t: Tensor): Tensor[] { return N.groupAllgather(this.h, t.handle).map((h) => new Tensor(h)); }
  barrier(): void { N.groupBarrier(this.h); }
  /** Many tensors made root's in a few flattened buckets (parameters and buffers of networks). */
  broadcastTensors(tensors: readonly Tensor[], root = 0, bucketBytes = 25 << 20): void { N.groupBroadcastTensors(this.h, tensors.map((t) => t.handle), root, bucketBytes); }
  /** Each parameter's gradient becomes the mean over the group, in flattened buckets of ~25 MB. */
  averageGradients(params: readonly Tensor[], bucketBytes = 25 << 20): number { return N.groupAverageGradients(this.h, params.map((t) => t.handle), bucketBytes); }
  destroy(): void {
    if (this.handle) N.groupDestroy(this.handle);
    this.handle = null;
  }
}
