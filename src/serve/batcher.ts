// Dynamic batching for the demo server: requests that arrive while the model is busy (or within a
// short window) are merged into one batch of up to maxBatch images, so throughput grows with load. The
// batch is computed elsewhere (the model thread): this side only queues, groups and hands out results.
import type { EngineItem } from './engine.js';
import type { ThreadResult } from './model-thread.js';
import type { ImagePixels } from '../data/grid.js';

export interface GenerateResult {
  /** the request's images, 8-bit NHWC */
  images: ImagePixels;
  /** milliseconds of the batch's computation, and how many images it made in total */
  computeMs: number;
  batchImages: number;
  queuedMs: number;
}

/** Makes the images of a batch of requests (in order). */
export type ComputeBatch = (items: EngineItem[]) => Promise<ThreadResult>;

interface Pending {
  req: EngineItem;
  resolve: (r: GenerateResult) => void;
  reject: (e: unknown) => void;
  enqueued: number;
}

export interface BatcherStats {
  requests: number;
  batches: number;
  images: number;
}

/** A request refused or dropped because the server is shutting down (503). */
export class ShuttingDown extends Error {
  constructor() {
    super('the server is shutting down');
  }
}

export class Batcher {
  private queue: Pending[] = [];
  private busy = false;
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  readonly stats: BatcherStats = { requests: 0, batches: 0, images: 0 };

  constructor(private readonly compute: ComputeBatch, private readonly o: { maxBatch: number; windowMs: number }) {}

  generate(req: EngineItem): Promise<GenerateResult> {
    if (this.closed) return Promise.reject(new ShuttingDown());
    return new Promise((resolve, reject) => {
      this.queue.push({ req, resolve, reject, enqueued: performance.now() });
      this.stats.requests += 1;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.busy || !this.queue.length) return;
    this.busy = true;
    this.idle = new Promise((resolve) => setTimeout(() => void this.flush().finally(resolve), this.o.windowMs));
  }

  /** Takes whole requests up to maxBatch images (at least one request) and computes them together. */
  private async flush(): Promise<void> {
    const take: Pending[] = [];
    let n = 0;
    while (this.queue.length && (take.length === 0 || n + this.queue[0]!.req.count <= this.o.maxBatch)) {
      const p = this.queue.shift()!;
      take.push(p);
      n += p.req.count;
    }
    const started = performance.now();
    try {
      if (take.length) {
        const r = await this.compute(take.map((p) => p.req));
        this.stats.batches += 1;
        this.stats.images += n;
        take.forEach((p, i) => p.resolve({ images: r.images[i]!, computeMs: r.computeMs, batchImages: n, queuedMs: started - p.enqueued }));
      }
    } catch (e) {
      for (const p of take) p.reject(e);
    } finally {
      this.busy = false;
      this.schedule();
    }
  }

  /**
   * New requests are refused; queued ones that no batch has taken are refused too (503); resolves when
   * the batch being computed has finished (a network call cannot be interrupted: it is waited for; the
   * server gives its clients a grace period of its own).
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new ShuttingDown());
    await this.idle;
  }
}
