// npm run bench:zip [-- --entries 60000 --reads 2000]
// Why src/io/zip.ts is our own: opening an EDM-style dataset zip (one small PNG per image) and
// reading random entries, as the image loader does, with our reader, yauzl and fflate. One line per
// figure (open time, random-read time per 1000 entries, memory held).
import { writeFileSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { zipSync, unzipSync } from 'fflate';
import yauzl from 'yauzl';
import { ZipReader } from '../src/io/zip.js';
import { encodePNG } from '../src/data/png.js';

const arg = (n: string, d: number) => { const i = process.argv.indexOf(`--${n}`); return i >= 0 ? Number(process.argv[i + 1]) : d; };
const entries = arg('entries', 60000);
const reads = arg('reads', 2000);
const dir = mkdtempSync(path.join(tmpdir(), 'dmd-bench-zip-'));
const file = path.join(dir, 'dataset.zip');
const files: Record<string, Uint8Array> = {};
for (let i = 0; i < entries; i++) {
  const data = Uint8Array.from({ length: 28 * 28 }, (_, k) => (k * 7 + i) & 255);
  files[`${String(Math.floor(i / 1000)).padStart(5, '0')}/img${String(i).padStart(8, '0')}.png`] = encodePNG({ width: 28, height: 28, channels: 1, data });
}
files['dataset.json'] = new TextEncoder().encode(JSON.stringify({ labels: Object.keys(files).map((k, i) => [k, i % 10]) }));
writeFileSync(file, zipSync(files, { level: 0 }));
const names = Object.keys(files).filter((n) => n.endsWith('.png'));
const picks = Array.from({ length: reads }, (_, i) => names[(i * 7919) % names.length]!);
const size = readFileSync(file).length;
console.log(`bench:zip ${entries} entries, ${(size / 2 ** 20).toFixed(1)} MiB archive, ${reads} random reads`);
const mem = () => process.memoryUsage().rss / 2 ** 20;

{
  const m0 = mem();
  const t0 = performance.now();
  const z = new ZipReader(file);
  const t1 = performance.now();
  let bytes = 0;
  for (const n of picks) bytes += z.readEntry(n).length;
  const t2 = performance.now();
  z.close();
  console.log(`zip dmd-torch ZipReader (sync, positioned reads, CRC checked): open ${(t1 - t0).toFixed(0)} ms, ${(((t2 - t1) / reads) * 1000).toFixed(0)} ms per 1000 reads, +${(mem() - m0).toFixed(0)} MiB RSS (${bytes} bytes read)`);
}
{
  const m0 = mem();
  const t0 = performance.now();
  const all = unzipSync(readFileSync(file));
  const t1 = performance.now();
  let bytes = 0;
  for (const n of picks) bytes += all[n]!.length;
  const t2 = performance.now();
  console.log(`zip fflate unzipSync (whole archive in memory, every entry extracted): open ${(t1 - t0).toFixed(0)} ms, ${(((t2 - t1) / reads) * 1000).toFixed(0)} ms per 1000 reads, +${(mem() - m0).toFixed(0)} MiB RSS (${bytes} bytes read)`);
}
{
  const m0 = mem();
  const t0 = performance.now();
  const z = await new Promise<yauzl.ZipFile>((res, rej) => yauzl.open(file, { lazyEntries: true, autoClose: false }, (e, zf) => (e ? rej(e) : res(zf))));
  const map = new Map<string, yauzl.Entry>();
  await new Promise<void>((res, rej) => {
    z.on('entry', (e: yauzl.Entry) => { map.set(e.fileName, e); z.readEntry(); });
    z.on('end', () => res());
    z.on('error', rej);
    z.readEntry();
  });
  const t1 = performance.now();
  let bytes = 0;
  for (const n of picks) {
    bytes += await new Promise<number>((res, rej) => z.openReadStream(map.get(n)!, (e, s) => {
      if (e) return rej(e);
      let k = 0;
      s.on('data', (c: Buffer) => { k += c.length; });
      s.on('end', () => res(k));
      s.on('error', rej);
    }));
  }
  const t2 = performance.now();
  z.close();
  console.log(`zip yauzl (async only, one stream per entry): open ${(t1 - t0).toFixed(0)} ms, ${(((t2 - t1) / reads) * 1000).toFixed(0)} ms per 1000 reads, +${(mem() - m0).toFixed(0)} MiB RSS (${bytes} bytes read)`);
}
rmSync(dir, { recursive: true, force: true });
