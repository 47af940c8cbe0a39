// dmd eval for Stable Diffusion generators and teachers: samples of an evaluation prompt file (cycled),
// FD in the classifier's features with precision/recall, FID with a detector, and the accuracy of the
// class each prompt asks for (JSON Lines "class"); the figures do not depend on the batch size (each
// sample's noise comes from the seed and its index); bad prompt files and flags are named.
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { evaluate, EvalConfigSchema } from '../../src/metrics/evaluate.js';
import { FeatureClassifier } from '../../src/metrics/classifier.js';
import { CLIPScorer } from '../../src/metrics/clip-score.js';
import { readSafetensors, writeSafetensors, randn, Generator, tidy } from '../../src/index.js';
import { StableDiffusion } from '../../src/sd/pipeline.js';
import { DMDTrainer } from '../../src/dmd/trainer.js';
import { tempDir } from '../helpers/tmp.js';
import { pngClassFolder } from '../helpers/data.js';
import { tinyTeacher } from '../helpers/teacher.js';
import { ROOT } from '../helpers/cli.js';

const dir = tempDir();
// a gray 32x32 text-to-image model: latents 4x16x16 (VAE f2 with one image channel)
const sd = StableDiffusion.create({
  unet: { model_channels: 32, channel_mult: [1, 2], num_res_blocks: 1, attention_resolutions: [2], num_heads: 2, context_dim: 32, image_size: 16 },
  vae: { ddconfig: { ch: 32, ch_mult: [1, 2], num_res_blocks: 1, resolution: 32, in_channels: 1, out_ch: 1 }, embed_dim: 4 },
  text: { width: 32, heads: 2, layers: 2 },
}, { seed: 5 });
const generator = path.join(dir, 'gray-generator.safetensors');
const teacher = path.join(dir, 'gray-teacher.safetensors');
sd.saveSingleFile(generator, { metadata: { role: 'generator', conditioning_timestep: '999' } });
sd.saveSingleFile(teacher);
sd.dispose();
const names = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot'];
const prompts = path.join(dir, 'eval.jsonl');
writeFileSync(prompts, names.map((n, c) => JSON.stringify({ text: `a photo of a ${n}`, class: c })).join('\n'));
const cls = path.join(dir, 'cls.safetensors');
{
  const c = FeatureClassifier.create({ inChannels: 1, classes: 10, width: 8, resolution: 32, name: 'tiny' }, 0);
  c.save(cls);
  c.dispose();
}
const ref = pngClassFolder(dir);
const quiet = () => {};
const base = { prompts, num: 12, ref, refNum: 12, classifier: cls, inception: path.join(ROOT, 'test/assets/tiny-detector.pt'), prK: 2, device: 'cpu', seed: 2 };

test('a one-step SD generator: FD, precision/recall, FID and the prompted class accuracy, the same for any batch size', async (t) => {
  const a = await evaluate(EvalConfigSchema.parse({ ...base, generator, batchSize: 5, out: path.join(dir, 'a.json') }), quiet);
  const b = await evaluate(EvalConfigSchema.parse({ ...base, generator, batchSize: 12, out: path.join(dir, 'b.json') }), quiet);
  t.like(a, { mode: 'one-step', nfe: 1, num: 12 });
  t.regex(String(a.conditioning), /10 prompts from eval\.jsonl, cycled, asking for 10 classes/);
  for (const k of ['FD-tiny', 'FID', 'precision', 'recall', 'classifier_accuracy_on_samples']) {
    t.true(typeof a[k] === 'number' && Number.isFinite(a[k] as number), k);
    // the same samples; batched arithmetic may differ in the last float bits
    t.true(Math.abs((a[k] as number) - (b[k] as number)) <= 1e-6 * Math.abs(a[k] as number) + 1e-9, `${k} does not depend on the batch size: ${a[k]} vs ${b[k]}`);
  }
  t.deepEqual(a.class_fractions, b.class_fractions);
  t.deepEqual(JSON.parse(readFileSync(path.join(dir, 'a.json'), 'utf8')).FID, a.FID);
});

test('an SD teacher with DDIM and guidance, the same for any batch size', async (t) => {
  const a = await evaluate(EvalConfigSchema.parse({ ...base, teacher, steps: 2, guidance: 3, num: 6, batchSize: 4, out: path.join(dir, 'c.json') }), quiet);
  const b = await evaluate(EvalConfigSchema.parse({ ...base, teacher, steps: 2, guidance: 3, num: 6, batchSize: 6, out: path.join(dir, 'd.json') }), quiet);
  t.like(a, { mode: 'ddim-2-cfg3', nfe: 4 });
  t.true(Math.abs((a['FD-tiny'] as number) - (b['FD-tiny'] as number)) <= 1e-6 * (a['FD-tiny'] as number), `${a['FD-tiny']} vs ${b['FD-tiny']}`);
  t.is(a.classifier_accuracy_on_samples, b.classifier_accuracy_on_samples);
});

test('SD evaluation without prompts, with classes on some prompts only, and prompts for an EDM model are refused naming the fix', async (t) => {
  await t.throwsAsync(evaluate(EvalConfigSchema.parse({ ...base, prompts: undefined, generator, out: path.join(dir, 'e.json') }), quiet), { message: /is a Stable Diffusion model: give the evaluation prompts with --prompts FILE/ });
  const partial = path.join(dir, 'partial.jsonl');
  writeFileSync(partial, [JSON.stringify({ text: 'a bag', class: 8 }), JSON.stringify({ text: 'a coat' })].join('\n'));
  await t.throwsAsync(evaluate(EvalConfigSchema.parse({ ...base, prompts: partial, generator, out: path.join(dir, 'f.json') }), quiet), { message: /1 of 2 prompts give a "class"; give it for every prompt or for none/ });
  const bad = path.join(dir, 'bad.jsonl');
  writeFileSync(bad, JSON.stringify({ text: 'a bag', class: 'bag' }));
  await t.throwsAsync(evaluate(EvalConfigSchema.parse({ ...base, prompts: bad, generator, out: path.join(dir, 'g.json') }), quiet), { message: /line 1: "class" must be a non-negative integer/ });
  await t.throwsAsync(evaluate(EvalConfigSchema.parse({ ...base, teacher: tinyTeacher(dir), out: path.join(dir, 'h.json') }), quiet), { message: /--prompts, --size and --teacher-config are for Stable Diffusion models/ });
  await t.throwsAsync(evaluate(EvalConfigSchema.parse({ ...base, generator: teacher, out: path.join(dir, 'i.json') }), quiet), { message: /is a Stable Diffusion teacher, not a one-step generator/ });
});

test('dmd-train with an SD teacher ends with the final evaluation on its prompts when a classifier fits', async (t) => {
  const out = path.join(dir, 'run');
  const lines: string[] = [];
  const tr = await DMDTrainer.create({ teacher, prompts, out, steps: 2, batchSize: 2, fakeUpdatesPerGen: 1, warmupSteps: 0, sampleEvery: 100, checkpointEvery: 100, finalEval: 6, evalRef: ref, evalRefNum: 12, classifier: cls, device: 'cpu' }, (s) => lines.push(s));
  await tr.train((s) => lines.push(s), { progress: false });
  tr.dispose();
  t.true(lines.some((l) => /^final evaluation \(6 samples, .*final-eval\.json\): FD-tiny [\d.]+, accuracy on intended classes [\d.]+/.test(l)), lines.join('\n'));
  const r = JSON.parse(readFileSync(path.join(out, 'final-eval.json'), 'utf8')) as Record<string, unknown>;
  t.regex(String(r.conditioning), /10 prompts from eval\.jsonl/);
  // without a class per prompt there is nothing the classifier can check against: skipped with the reason
  const plain = path.join(dir, 'plain.txt');
  writeFileSync(plain, names.map((n) => `a photo of a ${n}`).join('\n'));
  const lines2: string[] = [];
  const tr2 = await DMDTrainer.create({ teacher, prompts: plain, out: path.join(dir, 'run2'), steps: 1, batchSize: 2, fakeUpdatesPerGen: 1, warmupSteps: 0, sampleEvery: 100, checkpointEvery: 100, finalEval: 6, evalRef: ref, device: 'cpu' }, (s) => lines2.push(s));
  await tr2.train((s) => lines2.push(s), { progress: false });
  tr2.dispose();
  t.true(lines2.some((l) => /^final evaluation skipped: nothing to measure/.test(l)), lines2.join('\n'));
});

test('--eval-every with an SD teacher: FD and the prompted-class accuracy of fixed noises and cycled prompts, logged while training', async (t) => {
  const run = async (promptsFile: string, out: string) => {
    const tr = await DMDTrainer.create({ teacher, prompts: promptsFile, out, steps: 2, batchSize: 2, fakeUpdatesPerGen: 1, warmupSteps: 0, sampleEvery: 100, checkpointEvery: 100, finalEval: 0, evalEvery: 1, evalNum: 6, evalRef: ref, evalRefNum: 12, classifier: cls, device: 'cpu' }, quiet);
    await tr.train(quiet, { progress: false });
    tr.dispose();
    return readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((l) => 'FD-tiny' in l);
  };
  const evals = await run(prompts, path.join(dir, 'probe'));
  t.deepEqual(evals.map((l) => l.step), [1, 2]);
  for (const l of evals) {
    t.true(Number.isFinite(l['FD-tiny']!) && l['FD-tiny']! >= 0);
    t.true(Number.isInteger(Math.round(l.eval_accuracy! * 6 * 1e9) / 1e9), `accuracy ${l.eval_accuracy} is a count of 6`);
  }
  t.not(evals[0]!['FD-tiny'], evals[1]!['FD-tiny']); // the generator moved between the two
  // prompts without classes: FD only
  const plain = path.join(dir, 'plain-probe.txt');
  writeFileSync(plain, names.map((n) => `a photo of a ${n}`).join('\n'));
  const evals2 = await run(plain, path.join(dir, 'probe-plain'));
  t.is(evals2.length, 2);
  t.false('eval_accuracy' in evals2[0]!);
});

test('--clip adds the CLIP score: the mean of 100 * max(cos, 0) over the samples and their prompts; without --ref when it is all that is asked for', async (t) => {
  // the CLIP ViT of the parity fixture (openai's code, random weights) with a full-size vocabulary for CLIP's tokenizer
  const fx = readSafetensors(path.join(ROOT, 'test/fixtures/clip/clip-vit-tiny.safetensors')).tensors;
  const w = new Map([...fx].filter(([k]) => k.startsWith('weights/')).map(([k, v]) => [k.slice('weights/'.length), v] as const));
  w.set('token_embedding.weight', tidy(() => randn([49408, 64], { generator: Generator.create('cpu', 1) }).mul(0.02).keep()));
  const clipFile = path.join(dir, 'clip.safetensors');
  writeSafetensors(clipFile, w);
  const r = await evaluate(EvalConfigSchema.parse({ generator, prompts, clip: clipFile, num: 7, batchSize: 7, seed: 3, device: 'cpu', out: path.join(dir, 'clip.json') }), quiet);
  t.is(r.ref, null);
  t.false(Object.keys(r).some((k) => k.startsWith('FD-') || k === 'FID'));
  // the same images and prompts scored directly
  const sd = StableDiffusion.load(generator);
  const scorer = CLIPScorer.load(clipFile);
  const text = Array.from({ length: 7 }, (_, i) => `a photo of a ${names[i % 10]}`);
  const direct = tidy(() => scorer.scores(sd.oneStep(sd.noise(7, 0, 3, 16, 16), sd.encodePrompts(text), 999), text).mean().item());
  sd.dispose();
  scorer.dispose();
  t.log(`clip_score ${r.clip_score} (direct ${direct})`);
  t.true(Math.abs((r.clip_score as number) - direct) <= 1e-6 * Math.abs(direct) + 1e-9);
  t.true((r.clip_score as number) >= 0 && (r.clip_score as number) <= 100);
  await t.throwsAsync(evaluate(EvalConfigSchema.parse({ teacher: tinyTeacher(dir), clip: clipFile, steps: 2, num: 4, device: 'cpu', out: path.join(dir, 'j.json') }), quiet), { message: /--clip: a CLIP score compares images with their prompts; this model is not text-to-image/ });
});
