// Dynamic batching for the demo server: requests that arrive while the model is busy (or within a
// short window) are merged into one network call of up to maxBatch images, so throughput grows with
// load. Each request keeps its own seeded noise, so its images do not depend on what it was batched with.
import { tidy, noGrad, cat, randn, tensor, Generator, type Tensor, type Device } from '../tensor/index.js';
import { oneHot } from '../nn/functional.js';
import type { ImageModel } from '../edm/image-model.js';

export interface GenerateRequest {
  /** class per image (empty for unconditional models) */
  classes: number[];
  count: number;
  seed: number;
}

export interface GenerateResult {
  /** images in [-1, 1], float32 CPU [count, C, H, W] (the caller disposes it) */
  images: Tensor;
  /** milliseconds of the network call that produced them, and how many images it made in total */
  computeMs: number;
  batchImages: number;
  queuedMs: number;
}

interface Pending {
  req: GenerateRequest;
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
  readonly stats: BatcherStats = { requests: 0, batches: 0, images: 0 };

  constructor(private readonly model: ImageModel, private readonly o: { device: Device; maxBatch: number; windowMs: number }) {}

  generate(req: GenerateRequest): Promise<GenerateResult> {
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
    setTimeout(() => this.flush(), this.o.windowMs);
  }

  /** Takes whole requests up to maxBatch images (at least one request) and runs them in one call. */
  private flush(): void {
    if (!this.queue.length) {
      this.busy = false;
      return;
    }
    const take: Pending[] = [];
    let n = 0;
    while (this.queue.length && (take.length === 0 || n + this.queue[0]!.req.count <= this.o.maxBatch)) {
      const p = this.queue.shift()!;
      take.push(p);
      n += p.req.count;
    }
    const started = performance.now();
    try {
      const c = this.model.net.config;
      const outs = noGrad(() =>
        tidy(() => {
          const zs = take.map((p) => randn([p.req.count, c.img_channels, c.img_resolution, c.img_resolution], { generator: Generator.create('cpu', p.req.seed) }));
          const z = cat(zs).to(this.o.device);
          const labels = c.label_dim ? oneHot(tensor(take.flatMap((p) => p.req.classes), { dtype: 'int64' }), c.label_dim).to(this.o.device) : null;
          const x = this.model.sample(z, labels).clamp(-1, 1).to({ device: 'cpu', dtype: 'float32' });
          let at = 0;
          return take.map((p) => {
            const part = x.narrow(0, at, p.req.count).contiguous().keep();
            at += p.req.count;
            return part;
          });
        }),
      );
      const computeMs = performance.now() - started;
      this.stats.batches += 1;
      this.stats.images += n;
      take.forEach((p, i) => p.resolve({ images: outs[i]!, computeMs, batchImages: n, queuedMs: started - p.enqueued }));
    } catch (e) {
      for (const p of take) p.reject(e);
    } finally {
      this.busy = false;
      this.schedule();
    }
  }

  /**
   * New requests are refused; queued ones that no batch has taken are refused too (503); the batch
   * being computed may finish within graceMs (a native call cannot be interrupted: it is waited for).
   */
  async close(graceMs = 0): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new ShuttingDown());
    const until = performance.now() + graceMs;
    while (this.busy && performance.now() < until) await new Promise((r) => setTimeout(r, 5));
    while (this.busy) await new Promise((r) => setTimeout(r, 5));
  }
}
