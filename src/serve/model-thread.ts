// The model of `dmd serve` in its own thread (worker.ts), so that the event loop serving HTTP never
// waits for a network call: /api/health and the page answer while a batch is computed, and requests
// keep arriving and queueing for the next batch. Images come back as 8-bit pixels.
import { Worker } from 'node:worker_threads';
import type { EngineItem, EngineOptions, ModelInfo } from './engine.js';
import type { ImagePixels } from '../data/grid.js';

export interface ThreadError {
  name: string;
  message: string;
  code?: string | undefined;
}
export type ToModelThread = { type: 'run'; id: number; items: EngineItem[] } | { type: 'close' };
export type FromModelThread =
  | { type: 'ready'; info: ModelInfo }
  | { type: 'failed'; error: ThreadError }
  | { type: 'done'; id: number; images: ImagePixels[]; computeMs: number }
  | { type: 'error'; id: number; error: ThreadError }
  | { type: 'closed' };

export interface ThreadResult {
  images: ImagePixels[];
  /** milliseconds the model thread spent on the batch */
  computeMs: number;
}

/** An error of the model thread, with the name, message and code it had there. */
function revive(e: ThreadError): Error {
  const err = new Error(e.message);
  err.name = e.name;
  if (e.code !== undefined) (err as Error & { code?: string }).code = e.code;
  return err;
}

/**
 * The worker's module: the compiled worker.js beside this file, or (when running from the TypeScript
 * sources, as the tests do) worker.ts through tsx's loader, which a worker does not inherit.
 */
function spawn(data: EngineOptions): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./worker.js', here), { workerData: data });
  const entry = new URL('./worker.ts', here).href;
  return new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`, { eval: true, workerData: data });
}

export class ModelThread {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (r: ThreadResult) => void; reject: (e: Error) => void }>();
  private failure: Error | null = null;
  private exited: Promise<void>;

  private constructor(private readonly worker: Worker, readonly info: ModelInfo) {
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (m: FromModelThread) => {
      if (m.type !== 'done' && m.type !== 'error') return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.type === 'done') p.resolve({ images: m.images, computeMs: m.computeMs });
      else p.reject(revive(m.error));
    });
    const fail = (e: Error) => {
      this.failure ??= e;
      for (const p of this.pending.values()) p.reject(this.failure);
      this.pending.clear();
    };
    worker.on('error', (e) => fail(new Error(`the model thread failed: ${e.message}`)));
    worker.on('exit', (code) => fail(new Error(`the model thread ended (exit code ${code})`)));
  }

  /** Starts the thread and loads the model there; a model that cannot be loaded rejects with its error. */
  static start(o: EngineOptions): Promise<ModelThread> {
    const worker = spawn(o);
    return new Promise((resolve, reject) => {
      const onExit = (code: number) => reject(new Error(`the model thread ended (exit code ${code}) before the model was loaded`));
      worker.once('error', reject);
      worker.once('exit', onExit);
      worker.once('message', (m: FromModelThread) => {
        worker.off('error', reject);
        worker.off('exit', onExit);
        if (m.type === 'ready') return resolve(new ModelThread(worker, m.info));
        void worker.terminate();
        reject(m.type === 'failed' ? revive(m.error) : new Error(`the model thread said '${m.type}' before it was ready`));
      });
    });
  }

  /** The images of every item, made in the model thread. */
  run(items: EngineItem[]): Promise<ThreadResult> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ type: 'run', id, items } satisfies ToModelThread);
    });
  }

  /** Frees the model and ends the thread (after the batch it is computing, which cannot be interrupted). */
  async close(): Promise<void> {
    if (!this.failure) this.worker.postMessage({ type: 'close' } satisfies ToModelThread);
    await this.exited;
  }
}
