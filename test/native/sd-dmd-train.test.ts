// dmd-train with a Stable Diffusion v1 teacher (a tiny random one of the SD v1 layout) and training
// prompts: DMD2's text-to-image distribution matching through the generic trainer, the exported
// generator as an SD v1 single-file checkpoint that dmd sample reads, bit-exact resume, the first
// step's DM gradient (zero when the fake score still equals the unguided teacher), and refusals.
import test from 'ava';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { totalmem } from 'node:os';
import { readSafetensors, readSafetensorsHeader, dispose, tidy } from '../../src/index.js';
import { loadSDTeacher } from '../../src/dmd/models/sd.js';
import { DMDTrainer } from '../../src/dmd/trainer.js';
import { StableDiffusion } from '../../src/sd/pipeline.js';
import { generatorTimestep } from '../../src/sd/checkpoint.js';
import { parseUNetConfig } from '../../src/sd/config.js';
import { sdActivationBytes } from '../../src/sd/memory.js';
import { checkMemory } from '../../src/train/memory.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { tinySD } from '../helpers/sd.js';
import { tinyTeacher } from '../helpers/teacher.js';

const dir = tempDir();
const teacher = path.join(dir, 'sd-teacher.safetensors');
{
  const sd = tinySD(0);
  sd.saveSingleFile(teacher);
  sd.dispose();
}
const prompts = path.join(dir, 'prompts.txt');
writeFileSync(prompts, ['a photo of a sneaker', 'an ankle boot, studio shot', 'a red dress', 'a bag on a table', 'a pair of trousers', 'a shirt'].join('\n'));
const quiet = () => {};
const base = { teacher, prompts, batchSize: 2, fakeUpdatesPerGen: 2, warmupSteps: 0, finalEval: 0, sampleEvery: 100, checkpointEvery: 100, device: 'cpu', genLr: 1e-3, fakeLr: 1e-3 };

function sameState(a: Map<string, { equal(o: unknown): boolean }>, b: Map<string, unknown>): string[] {
  return [...a].filter(([k, v]) => !v.equal(b.get(k))).map(([k]) => k);
}

test.serial('an SD teacher distils with prompts: losses finite, grids decoded by the VAE, the generator exported as an SD v1 single file that dmd sample reads', async (t) => {
  const out = path.join(dir, 'run');
  const lines: string[] = [];
  const tr = await DMDTrainer.create({ ...base, out, steps: 6, sampleEvery: 3, realGuidance: 1.75 }, (s) => lines.push(s));
  const r = await tr.train((s) => lines.push(s), { progress: false });
  t.is(r.status, 'done');
  const startup = lines.find((l) => l.startsWith('DMD: '))!;
  t.regex(startup, /SD v1 latent UNet/);
  t.regex(startup, /6 prompts from prompts\.txt, real guidance 1\.75/);
  t.regex(startup, /generator at conditioning timestep 999/);
  t.regex(startup, /estimated peak memory per process [\d.]+ [MG]iB \(weights, gradients and AdamW moments [\d.]+ [MG]iB \+ activations [\d.]+ [MG]iB at batch 2\)/);
  t.true(lines.some((l) => /^memory: peak resident memory of this process during the iterations [\d.]+ [MG]iB .*; estimated at start-up/.test(l)), lines.join('\n'));
  const metrics = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  for (const m of metrics) for (const k of ['loss_fake', 'loss_dm']) if (m[k] !== undefined) t.true(Number.isFinite(m[k]), `${k} ${m[k]}`);
  t.true(metrics.some((m) => m.loss_dm !== undefined && m.loss_dm > 0));
  // the grid: 4 seeds (columns) of the first prompts (rows), as VAE-decoded 16x16 RGB images
  t.true(existsSync(path.join(out, 'samples-00000003.png')));
  const grid = readFileSync(path.join(out, 'samples-final.png'));
  t.is(grid.readUInt32BE(16), 4 * 16); // width: 4 seeds
  t.is(grid.readUInt32BE(20), 6 * 16); // height: the 6 prompts
  t.is(grid[25], 2); // RGB
  const file = r.generator!;
  t.is(generatorTimestep(file), 999);
  const meta = readSafetensorsHeader(file).metadata;
  t.is(meta.role, 'generator');
  t.is(meta.format, 'dmd-torch/sd');
  // the distilled UNet beside the teacher's own VAE and text encoder, under SD v1 key names
  const g = readSafetensors(file).tensors;
  const te = readSafetensors(teacher).tensors;
  t.is(g.size, te.size);
  const changed = [...te].filter(([k, v]) => !v.equal(g.get(k)!)).map(([k]) => k);
  t.true(changed.length > 0);
  t.true(changed.every((k) => k.startsWith('model.diffusion_model.')), changed.find((k) => !k.startsWith('model.diffusion_model.')));
  // the exported UNet is the trainer's G (no EMA)
  const unetKeys = [...tr.G.stateDict()].filter(([k, v]) => !v.equal(g.get(`model.diffusion_model.${k}`)!));
  t.deepEqual(unetKeys.map(([k]) => k), []);
  dispose([g, te]);
  tr.dispose();
  const sample = await runCli('dmd', ['sample', '--generator', file, '--prompt', 'a red dress', '--prompt', 'a shirt', '--out', path.join(dir, 'one-step.png')]);
  t.is(sample.code, 0, sample.out);
  t.regex(sample.out, /2 image\(s\) of 16x16 .*one step at t=999/);
});

test.serial('the first DM gradient is exactly zero when the fake score equals the unguided teacher, and not with guidance', async (t) => {
  for (const [guidance, zero] of [[1, true], [3, false]] as const) {
    const tr = new DMDTrainer({ ...base, out: path.join(dir, `first-${guidance}`), steps: 1, realGuidance: guidance }, quiet);
    const m = tr.iteration();
    t.is(m.gen_update, 1);
    if (zero) t.is(m.dm_grad_norm, 0);
    else t.true(m.dm_grad_norm! > 1e-4, `dm_grad_norm ${m.dm_grad_norm}`);
    tr.dispose();
  }
});

test.serial('resume is bit-exact: 8 iterations = 4 + resume + 4 (prompt draws, fake score, EMA)', async (t) => {
  const cfg = { ...base, emaDecay: 0.9, realGuidance: 1.75 };
  const a = new DMDTrainer({ ...cfg, out: path.join(dir, 'straight'), steps: 8 }, quiet);
  await a.train(quiet, { progress: false });
  const b1 = new DMDTrainer({ ...cfg, out: path.join(dir, 'split'), steps: 4 }, quiet);
  await b1.train(quiet, { progress: false });
  b1.dispose();
  const b2 = new DMDTrainer({ ...cfg, out: path.join(dir, 'split'), steps: 8, resume: true }, quiet);
  await b2.train(quiet, { progress: false });
  t.deepEqual(sameState(a.G.stateDict(), b2.G.stateDict()), []);
  t.deepEqual(sameState(a.critic!.fake!.stateDict(), b2.critic!.fake!.stateDict()), []);
  t.deepEqual(sameState(a.ema!.stateDict(), b2.ema!.stateDict()), []);
  a.dispose();
  b2.dispose();
  // a changed prompt file is a different run
  const other = path.join(dir, 'other-prompts.txt');
  writeFileSync(other, 'a coat\n');
  const c = new DMDTrainer({ ...cfg, prompts: other, out: path.join(dir, 'split'), steps: 12, resume: true }, quiet);
  const e = await t.throwsAsync(c.train(quiet, { progress: false }));
  t.regex(e!.message, /prompts_sha256/);
  c.dispose();
});

test('SD teachers without prompts, with what is not available for them yet, and EDM teachers with SD flags are refused in one line', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--teacher', teacher], /is a Stable Diffusion model: give the training prompts with --prompts FILE/],
    [['--teacher', teacher, '--prompts', prompts, '--recipe', 'sd15-dmd', '--dtype', 'float32'], /--recipe sd15-dmd regresses onto teacher pairs: give --pairs DIR/],
    [['--teacher', teacher, '--prompts', prompts, '--pairs', dir], /no pairs\.json \(make the dataset with 'dmd pairs --out/],
    [['--teacher', teacher, '--prompts', prompts, '--gan', '--data', dir], /--gan with a Stable Diffusion teacher/],
    [['--teacher', teacher, '--prompts', prompts, '--conditioning-timestep', '1000'], /--conditioning-timestep 1000: must be an integer timestep of the teacher's schedule, 0\.\.999/],
    [['--teacher', teacher, '--prompts', prompts, '--resolution', '13'], /--resolution 13: the image size must be a positive multiple of 2/],
    [['--teacher', teacher, '--prompts', path.join(dir, 'missing.txt')], /missing\.txt/],
    [['--teacher', tinyTeacher(dir), '--prompts', prompts], /--prompts is for Stable Diffusion teachers; .* is an EDM teacher/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli('dmd-train', [...args, '--out', path.join(dir, 'refused'), '--steps', '1', '--final-eval', '0']);
    t.is(r.code, 1, `${args.join(' ')}: ${r.out}`);
    t.regex(r.out, re);
    t.notRegex(r.out, /\n\s+at /, 'no stack trace');
  }
  t.false(existsSync(path.join(dir, 'refused', 'checkpoints')));
});

test('a generator from dmd-train is not taken as a teacher', async (t) => {
  const sd = StableDiffusion.load(teacher);
  const gen = path.join(dir, 'as-generator.safetensors');
  sd.saveSingleFile(gen, { metadata: { role: 'generator', conditioning_timestep: '999' } });
  sd.dispose();
  const r = await runCli('dmd-train', ['--teacher', gen, '--prompts', prompts, '--out', path.join(dir, 'refused2'), '--steps', '1']);
  t.is(r.code, 1);
  t.regex(r.out, /is a one-step generator from dmd-train, not a teacher/);
});

test.serial('data parallel: 2 processes x batch 1 equal 1 process x batch 2 (prompt draws sliced per rank)', async (t) => {
  // Adam divides by the gradients' own size, so parameters whose gradients are nearly zero (sums that
  // cancel, reduced in another order on two ranks) move differently by up to lr: the comparison is of
  // every iteration's losses and gradient norms, which would differ at once if a rank drew other prompts
  const args = ['--teacher', teacher, '--prompts', prompts, '--steps', '4', '--fake-updates-per-gen', '2', '--warmup-steps', '0', '--final-eval', '0', '--dist-same-noise', '--real-guidance', '1.75', '--metrics-every', '1'];
  const one = path.join(dir, 'dp-1');
  const two = path.join(dir, 'dp-2');
  const a = await runCli('dmd-train', [...args, '--batch-size', '2', '--out', one]);
  t.is(a.code, 0, a.out);
  const b = await runCli('dmd-train', [...args, '--batch-size', '1', '--nproc-per-node', '2', '--out', two]);
  t.is(b.code, 0, b.out);
  t.regex(b.out, /2 processes \(gloo\), global batch 2/);
  const read = (d: string) => readFileSync(path.join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  const [ma, mb] = [read(one), read(two)];
  t.is(ma.length, 4);
  t.is(mb.length, 4);
  let worst = 0;
  ma.forEach((m, i) => {
    for (const k of ['loss_fake', 'loss_dm', 'gnorm_gen', 'gnorm_fake']) {
      if (m[k] === undefined) continue;
      t.not(mb[i]![k], undefined, `${k} at step ${i + 1}`);
      worst = Math.max(worst, Math.abs(m[k]! - mb[i]![k]!) / Math.abs(m[k]!));
    }
  });
  t.log(`max relative difference of the losses and gradient norms over 4 iterations: ${worst.toExponential(2)}`);
  t.true(worst < 1e-4, `max relative difference ${worst}`);
});

test('the memory estimate: checkpointing and fused attention keep less, a batch too large names the one that fits, a model too large names what one sample needs', (t) => {
  const unet = parseUNetConfig({});
  const at = (lat: number, checkpointing: boolean, attentionProbs: boolean) => sdActivationBytes(unet, lat, lat, { bytes: 2, checkpointing, attentionProbs });
  for (const lat of [16, 32, 64]) {
    t.true(at(lat, true, true) < at(lat, false, true));
    t.true(at(lat, false, false) < at(lat, false, true));
  }
  t.true(at(64, false, true) > 3 * at(32, false, true), 'activations grow at least with the number of latent pixels');
  const mem = totalmem();
  const e = t.throws(() => checkMemory({ fixedBytes: 0, perSampleBytes: mem / 3 }, 4, 'cpu'));
  t.regex(e!.message, /--batch-size 4 needs an estimated .* more than this machine's memory .*; lower --batch-size \(2 fits by the estimate\)/);
  const big = t.throws(() => checkMemory({ fixedBytes: mem * 1.2, perSampleBytes: 2 ** 30 }, 1, 'cpu', 'use a device with more memory'));
  t.regex(big!.message, /not even batch 1 fits: the weights, gradients and AdamW moments alone need [\d.]+ GiB .*; use a device with more memory/);
  const act = t.throws(() => checkMemory({ fixedBytes: mem * 0.5, perSampleBytes: mem }, 1, 'cpu', 'or --activation-checkpointing'));
  t.regex(act!.message, /not even batch 1 fits \(it needs [\d.]+ GiB\): or --activation-checkpointing/);
  t.is(checkMemory({ fixedBytes: 2 ** 20, perSampleBytes: 2 ** 20 }, 2, 'cpu'), null);
});

test('the sample grids show 8 prompts spread evenly over a longer prompt file (a file sorted by subject shows every subject)', (t) => {
  const many = Array.from({ length: 16 }, (_, i) => `prompt number ${i}`);
  const m = loadSDTeacher(teacher, { device: 'cpu', prompts: many });
  const sd = StableDiffusion.load(teacher);
  try {
    tidy(() => {
      const g = m.gridInputs(0);
      t.is(g.cond!.shape[0], 8 * 4);
      const want = sd.encodePrompts([0, 2, 4, 6, 8, 10, 12, 14].map((i) => many[i]!));
      for (let r = 0; r < 8; r++) t.true(g.cond!.select(0, r * 4).allclose(want.select(0, r), 1e-6, 1e-6), `row ${r}`);
      dispose([g.z, g.cond]);
    });
  } finally {
    m.dispose();
    sd.dispose();
  }
});
