// npm run bench:sd-memory [-- --full] [--keep DIR]
// The memory estimate of dmd-train with SD v1-family teachers beside the measured peak, on this
// machine (CPU): SD v1.5's layout with a narrow UNet (model_channels 64; SD v1.5's own text encoder and
// VAE) distilled for 2 iterations at 16x16 and 32x32 latents, several batches, with and without
// activation checkpointing. The measured figure is the process's peak resident memory (VmHWM), which
// also holds node, libtorch and the tokenizer (a few hundred MiB that the estimate leaves out). With
// --full, SD v1.5 itself (random weights, a 4.3 GB file) at 16x16 latents and batch 1: dmd-train runs it
// or refuses, whichever the estimate says. Last, the estimate for SD v1.5 at 512 px on an 80 GB GPU
// (bfloat16, activation checkpointing, fused attention), and the batch that fits there by it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseUNetConfig } from '../src/sd/config.js';
import { sdActivationBytes } from '../src/sd/memory.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const keep = process.argv.includes('--keep') ? process.argv[process.argv.indexOf('--keep') + 1]! : null;
const dir = keep ?? mkdtempSync(path.join(tmpdir(), 'dmd-sd-memory-'));
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
const GiB = 2 ** 30;

function run(args: string[]): { code: number | null; out: string } {
  const r = spawnSync(tsx, args, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function checkpoint(name: string, config: object): string {
  const file = path.join(dir, name);
  const r = run(['scripts/make-sd-checkpoint.ts', '--out', file, '--config', JSON.stringify(config)]);
  if (r.code !== 0) throw new Error(r.out);
  console.log(r.out.trim());
  return file;
}

const prompts = path.join(dir, 'prompts.txt');
writeFileSync(prompts, ['a photo of a sneaker', 'an ankle boot, studio shot', 'a red dress on a hanger', 'a leather bag'].join('\n'));

interface Row { model: string; latents: number; batch: number; checkpointing: boolean; estimate: string; peak: string; status: string }
const rows: Row[] = [];
function distil(model: string, file: string, latents: number, batch: number, checkpointing: boolean): void {
  const out = path.join(dir, `run-${model}-${latents}-${batch}-${checkpointing}`);
  const args = ['src/cli/dmd-train.ts', '--teacher', file, '--prompts', prompts, '--resolution', String(latents * 8), '--batch-size', String(batch), '--steps', '2', '--fake-updates-per-gen', '2',
    '--final-eval', '0', '--sample-every', '1000', '--out', out, ...(checkpointing ? ['--activation-checkpointing'] : [])];
  const r = run(args);
  const est = /estimated peak memory per process ([\d.]+ [GM]iB)/.exec(r.out)?.[1] ?? /needs an estimated ([\d.]+ [GM]iB)/.exec(r.out)?.[1] ?? '?';
  const m = /memory: peak resident memory of this process during the iterations ([\d.]+ [GM]iB) \(([\d.]+ [GM]iB) in use when they began/.exec(r.out);
  const peak = m ? `${m[1]} (${m[2]} at the start)` : '-';
  const status = r.code === 0 ? 'ran' : (/error: (.*)/.exec(r.out)?.[1] ?? r.out.trim().split('\n').at(-1) ?? '').slice(0, 160);
  rows.push({ model, latents, batch, checkpointing, estimate: est, peak, status });
  console.log(`${model} latents ${latents}x${latents} batch ${batch} checkpointing ${checkpointing ? 'on' : 'off'}: estimate ${est}, measured ${peak} (${status})`);
  rmSync(out, { recursive: true, force: true });
}

try {
  const narrow = checkpoint('sd15-narrow.safetensors', { unet: { model_channels: 64 } });
  for (const [latents, batch, ckpt] of [[16, 1, false], [16, 4, false], [32, 1, false], [32, 4, false], [32, 4, true], [48, 2, false], [48, 2, true]] as const) distil('SD1.5 layout, 64 ch', narrow, latents, batch, ckpt);
  if (process.argv.includes('--full')) {
    const full = checkpoint('sd15-random.safetensors', {});
    distil('SD v1.5', full, 16, 1, true);
  }
  console.log('\n| model | latents | batch | activation checkpointing | estimate | measured peak RSS of the iterations (at their start) | outcome |\n|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.model} | ${r.latents}x${r.latents} | ${r.batch} | ${r.checkpointing ? 'on' : 'off'} | ${r.estimate} | ${r.peak} | ${r.status} |`);
  // SD v1.5 at 512 px on an 80 GB GPU: 859.5M UNet parameters, float32 master weights
  const P = 859_520_964;
  const frozen = 4 * (123_060_480 + 83_653_863);
  const fixed = 4 * P * 3 + 12 * P * 2 + frozen;
  const unet = parseUNetConfig({});
  for (const ckpt of [true, false]) {
    const per = sdActivationBytes(unet, 64, 64, { bytes: 2, checkpointing: ckpt, attentionProbs: false });
    const gpu = 79.1 * GiB; // what an 80 GB H100/A100 reports
    console.log(`SD v1.5, 512 px (64x64 latents), bfloat16, fused attention, checkpointing ${ckpt ? 'on' : 'off'}: fixed ${(fixed / GiB).toFixed(1)} GiB + ${(per / GiB).toFixed(2)} GiB per sample; ` +
      `batch ${Math.floor((0.9 * gpu - fixed) / per)} fits in 80 GB by the estimate (batch 8: ${((fixed + 8 * per) / GiB).toFixed(1)} GiB)`);
  }
} finally {
  if (!keep) rmSync(dir, { recursive: true, force: true });
}
