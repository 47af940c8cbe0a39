// Plots one metric of a metrics.jsonl as a PNG line chart (log-scaled y when positive).
//   npx tsx scripts/plot-metrics.ts runs/x/metrics.jsonl loss loss.png [x-field]
import { readFileSync, writeFileSync } from 'node:fs';
import { encodePNG } from '../src/data/png.js';

const [file, field, out, xField = 'step'] = process.argv.slice(2);
if (!file || !field || !out) {
  console.error('usage: plot-metrics.ts metrics.jsonl <field> out.png [x-field]');
  process.exit(2);
}
const rows = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((r) => Number.isFinite(r[field]));
const xs = rows.map((r) => r[xField]!);
const log = rows.every((r) => r[field]! > 0);
const ys = rows.map((r) => (log ? Math.log10(r[field]!) : r[field]!));
const W = 480, H = 240, M = 24;
const img = new Uint8Array(W * H * 3).fill(255);
const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
const px = (x: number) => Math.round(M + ((x - x0) / Math.max(x1 - x0, 1e-12)) * (W - 2 * M));
const py = (y: number) => Math.round(H - M - ((y - y0) / Math.max(y1 - y0, 1e-12)) * (H - 2 * M));
const dot = (x: number, y: number, c: [number, number, number]) => {
  if (x < 0 || y < 0 || x >= W || y >= H) return;
  img.set(c, (y * W + x) * 3);
};
for (let x = M; x < W - M; x++) dot(x, H - M, [0, 0, 0]);
for (let y = M; y < H - M; y++) dot(M, y, [0, 0, 0]);
if (log) for (let d = Math.ceil(y0); d <= y1; d++) for (let x = M; x < W - M; x += 3) dot(x, py(d), [180, 180, 180]);
for (let i = 1; i < xs.length; i++) {
  const [ax, ay, bx, by] = [px(xs[i - 1]!), py(ys[i - 1]!), px(xs[i]!), py(ys[i]!)];
  const n = Math.max(Math.abs(bx - ax), Math.abs(by - ay), 1);
  for (let k = 0; k <= n; k++) dot(Math.round(ax + ((bx - ax) * k) / n), Math.round(ay + ((by - ay) * k) / n), [200, 30, 30]);
}
writeFileSync(out, encodePNG({ width: W, height: H, channels: 3, data: img }));
console.log(`${out}: ${field} vs ${xField}, ${rows.length} points, ${log ? `log10 y in [${y0.toFixed(2)}, ${y1.toFixed(2)}] (dotted lines at powers of 10)` : `y in [${y0}, ${y1}]`}, x in [${x0}, ${x1}]`);
