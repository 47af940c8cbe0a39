// DMD end to end on CUDA (run by `npm run test:gpu` on the GPU machine): trainer iterations in float32
// and bfloat16 with pairs, GAN and EMA; the same seeded run twice (libtorch's default kernels: close,
// reported; --deterministic: identical); bit-exact resume with --deterministic; and the command line
// (dmd-train --device cuda, dmd sample --device cuda). Every test skips with the reason without CUDA.
// DMD_GPU_TEST_DEVICE=cpu runs the same checks on the CPU (a rehearsal of this file without a GPU).
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { cuda, traceTensors, loadEDM, noGrad, type Device } from '../../src/index.js';
import { DMDTrainer } from '../../src/dmd/trainer.js';
import type { DMDConfig } from '../../src/dmd/config.js';
import { makePairs, PairsConfigSchema } from '../../src/dmd/regression/pairs.js';
import { decodePNG } from '../../src/data/png.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { tinyTeacher } from '../helpers/teacher.js';
import { pngClassFolder } from '../helpers/data.js';

// cuBLAS reads its workspace setting once, at its first use in this process (deterministic runs need it)
process.env.CUBLAS_WORKSPACE_CONFIG ??= ':4096:8';

const device = (process.env.DMD_GPU_TEST_DEVICE ?? 'cuda') as Device;
const available = device === 'cpu' || cuda.isAvailable();
const reason = cuda.unavailableReason() ?? 'CUDA is available';
const gpu = available ? test.serial : test.skip;
const t_ = (title: string) => (available ? `${title} (${device})` : `${title} [skipped: ${reason}]`);
const dtypes = device === 'cpu' ? (['float32'] as const) : (['float32', 'bfloat16'] as const);

const dir = tempDir();
const teacher = tinyTeacher(dir);
const quiet = () => {};
const pairsDir = path.join(dir, 'pairs');
let pairsMade: Promise<unknown> | undefined;
const pairs = () => (pairsMade ??= makePairs(PairsConfigSchema.parse({ teacher, out: pairsDir, count: 16, steps: 3, shardSize: 8, batchSize: 8, device }), quiet));

type Row = Record<string, number>;
const metrics = (out: string): Row[] => readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Row);
const LOSSES = ['loss_fake', 'loss_dm', 'loss_reg', 'loss_gan_gen', 'loss_gan_head'];

async function run(name: string, extra: Partial<DMDConfig> & Record<string, unknown>): Promise<{ tr: DMDTrainer; rows: Row[] }> {
  await pairs();
  const out = path.join(dir, name);
  const tr = new DMDTrainer({
    teacher, device, batchSize: 4, fakeUpdatesPerGen: 2, pairs: pairsDir, regression: 'l2', gan: true, diffusionGan: true, data: pngClassFolder(dir),
    emaDecay: 0.9, sampleEvery: 100, checkpointEvery: 100, metricsEvery: 1, finalEval: 0, out, steps: 8, ...extra,
  }, quiet);
  const r = await tr.train(quiet, { progress: false });
  if (r.status !== 'done') throw new Error(`${name}: run ended with ${r.status}`);
  return { tr, rows: metrics(out) };
}

function sameState(a: DMDTrainer, b: DMDTrainer): string[] {
  const differ: string[] = [];
  for (const [name, x, y] of [['G', a.G, b.G], ['fake', a.critic!.fake!, b.critic!.fake!], ['ema', a.ema!, b.ema!]] as const) {
    const sb = y.stateDict();
    for (const [k, v] of x.stateDict()) if (!v.equal(sb.get(k)!)) differ.push(`${name}.${k}`);
  }
  return differ;
}

for (const dtype of dtypes) {
  gpu(t_(`DMD iterations in ${dtype} (pairs, diffusion GAN, EMA): finite losses, the generator moves, no tensor left behind`), async (t) => {
    await pairs();
    const stop = traceTensors();
    const { tr, rows } = await run(`iters-${dtype}`, { dtype });
    t.is(rows.length, 8);
    t.is(rows.filter((r) => r.gen_update === 1).length, 4);
    for (const r of rows) for (const k of LOSSES) if (k in r) t.true(Number.isFinite(r[k]), `${k} at step ${r.step}: ${r[k]}`);
    for (const k of ['loss_fake', 'loss_dm', 'loss_reg', 'loss_gan_gen']) t.true(rows.some((r) => k in r && r[k]! > 0), `${k} never logged`);
    const moved = noGrad(() => tr.G.parameters().some((p, i) => !p.equal(tr.real.parameters()[i]!)));
    t.true(moved, 'generator parameters equal the teacher after 4 updates');
    t.is(tr.G.parameters()[0]!.device, device === 'cpu' ? 'cpu' : 'cuda:0');
    tr.dispose();
    t.deepEqual(stop(), [], 'tensors left to the garbage collector');
  });
}

gpu(t_('the same seeded run twice: close with the default kernels, identical with --deterministic'), async (t) => {
  const a = await run('repeat-a', {});
  const b = await run('repeat-b', {});
  let worst = 0;
  for (const [i, r] of a.rows.entries()) for (const k of LOSSES) if (k in r) worst = Math.max(worst, Math.abs(r[k]! - b.rows[i]![k]!) / Math.max(Math.abs(r[k]!), 1e-6));
  t.log(`default kernels: largest relative loss difference between two identical runs ${worst.toExponential(2)}${worst === 0 ? ' (identical)' : ''}`);
  t.true(worst < 1e-2, `identical runs differ by ${worst} relative`);
  a.tr.dispose();
  b.tr.dispose();
  const c = await run('repeat-c', { deterministic: true });
  const d = await run('repeat-d', { deterministic: true });
  t.deepEqual(c.rows.map((r) => LOSSES.map((k) => r[k] ?? null)), d.rows.map((r) => LOSSES.map((k) => r[k] ?? null)));
  t.deepEqual(sameState(c.tr, d.tr), []);
  c.tr.dispose();
  d.tr.dispose();
  cuda.setDeterminism({ algorithms: false, cudnnDeterministic: false });
});

gpu(t_('resume with --deterministic is bit-exact: 12 iterations = 6 + resume + 6'), async (t) => {
  const a = await run('straight', { deterministic: true, steps: 12 });
  const b1 = await run('split', { deterministic: true, steps: 6 });
  b1.tr.dispose();
  const b2 = await run('split', { deterministic: true, steps: 12, resume: true });
  t.deepEqual(sameState(a.tr, b2.tr), []);
  t.deepEqual(LOSSES.map((k) => a.rows.at(-1)![k] ?? null), LOSSES.map((k) => b2.rows.at(-1)![k] ?? null));
  a.tr.dispose();
  b2.tr.dispose();
  cuda.setDeterminism({ algorithms: false, cudnnDeterministic: false });
});


gpu(t_('dmd-train --device then dmd sample --device: a one-step generator trained and sampled there'), async (t) => {
  const out = path.join(dir, 'cli-run');
  const r = await runCli('dmd-train', ['--teacher', teacher, '--device', device, '--steps', '4', '--batch-size', '4', '--fake-updates-per-gen', '2', '--final-eval', '0', '--out', out, '--deterministic']);
  t.is(r.code, 0, r.out);
  t.regex(r.out, new RegExp(`${device === 'cpu' ? 'cpu' : 'cuda'}[^\\n]*deterministic kernels`));
  const gen = path.join(out, 'generator.safetensors');
  const G = loadEDM(gen);
  t.is(G.config.img_resolution, 32);
  G.dispose();
  const singles = path.join(dir, 'cli-samples');
  const s = await runCli('dmd', ['sample', '--generator', gen, '--device', device, '--count', '3', '--labels', '4', '--out', singles]);
  t.is(s.code, 0, s.out);
  t.deepEqual(readdirSync(singles).sort(), ['000000.png', '000001.png', '000002.png']);
  const img = decodePNG(readFileSync(path.join(singles, '000000.png')));
  t.deepEqual([img.width, img.height, img.channels], [32, 32, 1]);
  const grid = path.join(dir, 'cli-heun.png');
  const h = await runCli('dmd', ['sample', '--teacher', teacher, '--device', device, '--steps', '3', '--count', '10', '--out', grid]);
  t.is(h.code, 0, h.out);
  t.regex(h.out, /Heun 3 steps, NFE 5/);
});
