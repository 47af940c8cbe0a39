// npm run bench:serve [-- --generator G --count 1 --seconds 5 --device cpu --no-health]
// Requests/s and p50/p95 latency of `dmd serve` at 1, 8 and 32 concurrent clients against 127.0.0.1,
// in one run, and how long GET /api/health takes meanwhile (polled every 10 ms: the event loop's
// responsiveness while batches are computed). Without --generator the bundled teacher is served as a
// one-step generator (the same network as a distilled one, so the same speed). One line per figure.
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { loadEDM, saveGenerator, defaultTeacherPath, getNumThreads, buildInfo } from '../src/index.js';
import { startServer, ServeConfigSchema } from '../src/serve/server.js';

const arg = (n: string, d: string) => { const i = process.argv.indexOf(`--${n}`); return i >= 0 ? process.argv[i + 1]! : d; };
const count = Number(arg('count', '1'));
const seconds = Number(arg('seconds', '5'));
const device = arg('device', 'auto');
const probeHealth = !process.argv.includes('--no-health');
const tmp = mkdtempSync(path.join(tmpdir(), 'dmd-bench-serve-'));
let generator = arg('generator', '');
if (!generator) {
  generator = path.join(tmp, 'generator.safetensors');
  const net = loadEDM(defaultTeacherPath());
  saveGenerator(net, generator, 80);
  net.dispose();
}
const server = await startServer(ServeConfigSchema.parse({ generator, port: 0, device, maxCount: Math.max(64, count), maxBatch: 256 }), () => {});
const body = (seed: number) => JSON.stringify({ count, seed, format: 'png' });
console.log(`bench:serve ${path.basename(generator)}, ${count} image(s) per request, ${getNumThreads()} threads, libtorch ${buildInfo().torchVersion}, ${server.url}`);
// warm-up
for (let i = 0; i < 3; i++) await (await fetch(new URL('api/generate', server.url), { method: 'POST', body: body(i) })).arrayBuffer();
for (const clients of [1, 8, 32]) {
  const lat: number[] = [];
  const b0 = server.batcher.stats.batches;
  const end = performance.now() + seconds * 1000;
  let seed = 0;
  const health: number[] = [];
  const probe = (async () => {
    while (probeHealth && performance.now() < end) {
      const h0 = performance.now();
      await (await fetch(new URL('api/health', server.url))).arrayBuffer();
      health.push(performance.now() - h0);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const r = await fetch(new URL('api/generate', server.url), { method: 'POST', body: body(seed++) });
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`status ${r.status}`);
      lat.push(performance.now() - t0);
    }
  }));
  await probe;
  lat.sort((a, b) => a - b);
  health.sort((a, b) => a - b);
  const q = (p: number, v = lat) => v[Math.min(v.length - 1, Math.floor(p * v.length))]!;
  const batches = server.batcher.stats.batches - b0;
  console.log(`serve ${clients} concurrent client(s): ${(lat.length / seconds).toFixed(1)} requests/s (${((lat.length * count) / seconds).toFixed(1)} images/s), latency p50 ${q(0.5).toFixed(1)} ms, p95 ${q(0.95).toFixed(1)} ms, ${(lat.length / Math.max(batches, 1)).toFixed(1)} requests per batch${health.length ? `; /api/health meanwhile p50 ${q(0.5, health).toFixed(1)} ms, max ${health[health.length - 1]!.toFixed(1)} ms (${health.length} probes)` : ''}`);
}
await server.close();
rmSync(tmp, { recursive: true, force: true });
