// The model thread of `dmd serve` (a worker_threads Worker started by model-thread.ts): loads the model
// named by its workerData, then answers `run` messages with the images' pixels (their buffers
// transferred, not copied) until `close`, when it frees the model and exits. A failure is sent back as
// {name, message, code}, never thrown across the thread boundary.
import { parentPort, workerData } from 'node:worker_threads';
import { loadEngine, type Engine, type EngineOptions } from './engine.js';
import type { ToModelThread, FromModelThread, ThreadError } from './model-thread.js';

const port = parentPort!;
const post = (m: FromModelThread, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

function describe(e: unknown): ThreadError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const code = (e as { code?: unknown }).code;
  return { name: e.name, message: e.message, code: typeof code === 'string' ? code : undefined };
}

let engine: Engine | null = null;
try {
  engine = loadEngine(workerData as EngineOptions);
  post({ type: 'ready', info: engine.info });
} catch (e) {
  post({ type: 'failed', error: describe(e) });
}

port.on('message', (m: ToModelThread) => {
  if (m.type === 'close') {
    engine?.dispose();
    engine = null;
    post({ type: 'closed' });
    port.close();
    return;
  }
  if (!engine) return post({ type: 'error', id: m.id, error: { name: 'Error', message: 'the model is not loaded' } });
  const t0 = performance.now();
  try {
    const images = engine.run(m.items);
    post({ type: 'done', id: m.id, images, computeMs: performance.now() - t0 }, images.map((p) => p.data.buffer as ArrayBuffer));
  } catch (e) {
    post({ type: 'error', id: m.id, error: describe(e) });
  }
});
